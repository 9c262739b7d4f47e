"""Optional LLM phrasing through any OpenAI-compatible endpoint (``GASDESK_LLM_BASE_URL``).

The LLM only rephrases text it is given: knowledge-base articles (the answer cites them) and the scripted lines
of a training persona (``training.sparring``). With no endpoint configured, or on any error or timeout,
callers fall back to the text as written. Nothing else depends on it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import httpx

from gasdesk.config import get_settings

log = logging.getLogger(__name__)
TIMEOUT_S = 8.0
SYSTEM_PROMPT = (
    "你是热力燃气公司的在线客服。只能依据用户消息中提供的知识库文章回答居民的问题，不得编造文章以外的信息；"
    "如果文章不足以回答，就只回答文章能支持的部分。用简体中文，语气亲切，100 字以内，不要使用 Markdown。"
)
_transport: httpx.AsyncBaseTransport | None = None  # tests may point this at a MockTransport


class Article(Protocol):
    title: str
    answer: str


def llm_enabled() -> bool:
    return bool(get_settings().llm_base_url)


def _prompt(question: str, articles: Sequence[Article]) -> str:
    blocks = [f"[{i + 1}]《{a.title}》\n{a.answer}" for i, a in enumerate(articles)]
    return "知识库文章：\n" + "\n\n".join(blocks) + f"\n\n居民问题：{question}"


async def _complete(messages: list[dict[str, str]], *, temperature: float, max_tokens: int) -> str | None:
    """The endpoint's answer to ``messages``, stripped; None when none is configured, on any error or when
    it answers nothing."""
    settings = get_settings()
    if not settings.llm_base_url:
        return None
    headers = {"Authorization": f"Bearer {settings.llm_api_key}"} if settings.llm_api_key else {}
    body = {"model": settings.llm_model, "temperature": temperature, "max_tokens": max_tokens,
            "messages": messages}
    try:
        async with httpx.AsyncClient(base_url=settings.llm_base_url.rstrip("/"), timeout=TIMEOUT_S,
                                     transport=_transport) as client:
            response = await client.post("/chat/completions", json=body, headers=headers)
        response.raise_for_status()
        text = str(response.json()["choices"][0]["message"]["content"]).strip()
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        log.warning("LLM phrasing unavailable, using the text as written: %s", type(exc).__name__)
        return None
    return text or None


async def phrase_grounded_answer(question: str, articles: Sequence[Article]) -> str | None:
    """An answer phrased by the LLM from ``articles`` only, ending with the cited title; None to fall back."""
    if not articles:
        return None
    text = await _complete([{"role": "system", "content": SYSTEM_PROMPT},
                            {"role": "user", "content": _prompt(question, articles)}],
                           temperature=0.2, max_tokens=400)
    if text is None:
        return None
    cited = articles[0].title
    return text if f"《{cited}》" in text else f"{text}\n（参考：《{cited}》）"


PERSONA_PROMPT = (
    "你在客服培训中扮演一位给燃气热力公司打电话的居民。人物设定：{persona}\n"
    "把下面这句台词换一种自然的口语说法，意思和其中的地址、数字、时间必须完全不变，不要增加新信息，"
    "60 字以内，只输出台词本身。"
)


async def phrase_persona_line(persona: str, line: str) -> str | None:
    """A training persona's scripted ``line`` said in other words; None to use the line as written."""
    if not line:
        return None
    text = await _complete([{"role": "system", "content": PERSONA_PROMPT.format(persona=persona)},
                            {"role": "user", "content": line}], temperature=0.7, max_tokens=160)
    # a long or multi-line answer is not one line of dialogue: keep the script's
    return text if text and len(text) <= 3 * len(line) + 20 and "\n" not in text else None
