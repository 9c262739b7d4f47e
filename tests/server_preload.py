"""Imported once by the forkserver of tests/servers.py: everything a gasdesk server process loads before it
serves, so that forked servers start without paying for it."""

import uvicorn  # noqa: F401 - preloaded for the forked servers

from gasdesk.bot.nlu import understand
from gasdesk.web.app import domain_routers

domain_routers()  # every domain's api/pages module
# jieba's dictionary and the fitted intent model (from the test run's NLU cache): the NLU bot's first turn.
understand("家里没气了怎么办")
