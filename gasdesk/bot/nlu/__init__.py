"""Offline Chinese understanding for the resident bot: intent + confidence + slots, no network.

Usage::

    from gasdesk.bot.nlu import understand
    understand("明天下午想约个安检，户号2103345678").to_dict()
"""

from gasdesk.bot.nlu.engine import Understanding, understand
from gasdesk.bot.nlu.intents import INTENTS
from gasdesk.bot.nlu.safety import is_gas_leak
from gasdesk.bot.nlu.slots import extract_slots

__all__ = ["INTENTS", "Understanding", "extract_slots", "is_gas_leak", "understand"]
