"""Domain gate: questions about electricity, water, phones, parcels... are out of scope.

Such messages share most of their wording with ours (欠费, 怎么充值, 查一下), so the classifier
alone confuses "电费欠多少" with a gas balance query. Naming another utility or everyday subject
without any gas/heating word settles it.
"""

from __future__ import annotations

import re
from functools import cache

from gasdesk.bot.nlu.lexicon import load_words
from gasdesk.bot.nlu.normalize import normalize


@cache
def _pattern(name: str) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, load_words(name))))


def mentions_domain(text: str) -> bool:
    """True when ``text`` names something of the gas/heating domain (营业厅, 暖气, 燃气表, 户号…)."""
    return bool(_pattern("domain_terms.txt").search(normalize(text)))


def is_off_domain(text: str) -> bool:
    """True when ``text`` names an off-domain subject and nothing from the gas/heating domain."""
    clean = normalize(text)
    return bool(_pattern("off_domain_terms.txt").search(clean)) and not _pattern("domain_terms.txt").search(clean)
