"""Optional LLM phrasing: with GASDESK_LLM_BASE_URL set, knowledge answers are phrased by an
OpenAI-compatible endpoint from the retrieved articles only and cite them; on errors, or without the
setting, the article text is used. The endpoint here is a real local HTTP server that answers from the
prompt it receives."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gasdesk.audit.service import Actor
from gasdesk.config import reset_settings_cache
from gasdesk.db import commit
from gasdesk.kb.service import best_answer, check_article, do_create_article

ACTOR = Actor.system("kb-test", "test")


class FakeOpenAI(BaseHTTPRequestHandler):
    requests: list[dict] = []
    fail = False

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if FakeOpenAI.fail:
            self.send_response(500)
            self.end_headers()
            return
        prompt = body["messages"][-1]["content"]
        # Answer from what it was given: the first article's title and first sentence of its text.
        first = prompt.split("》\n", 1)[1].split("。", 1)[0]
        reply = {"choices": [{"message": {"role": "assistant", "content": f"您好，{first}。"}}]}
        data = json.dumps(reply, ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeOpenAI]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeOpenAI.requests, FakeOpenAI.fail = [], False
    monkeypatch.setenv("GASDESK_LLM_BASE_URL", f"http://127.0.0.1:{server.server_port}/v1")
    monkeypatch.setenv("GASDESK_LLM_API_KEY", "sk-test")
    reset_settings_cache()
    yield FakeOpenAI
    server.shutdown()
    reset_settings_cache()


async def _article(session) -> None:
    await do_create_article(session, ACTOR, check_article(
        title="IC卡表如何更换电池", questions=["燃气表没电了怎么办", "IC卡表换电池"],
        answer="IC卡表显示低电压时请更换两节5号碱性电池。打开表盖右侧电池盒，按正负极装入后插一次卡即可。",
        category="表具"), status="published")
    await commit(session)


async def test_answer_is_phrased_from_the_article_and_cites_it(session, fake_llm) -> None:
    await _article(session)
    answer = await best_answer(session, "我家燃气表没电了咋整", channel="webchat")
    assert answer == "您好，IC卡表显示低电压时请更换两节5号碱性电池。\n（参考：《IC卡表如何更换电池》）"
    sent = fake_llm.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer sk-test"
    prompt = sent["body"]["messages"][-1]["content"]
    assert "我家燃气表没电了咋整" in prompt and "两节5号碱性电池" in prompt
    assert "只能依据" in sent["body"]["messages"][0]["content"]


async def test_endpoint_errors_fall_back_to_the_article(session, fake_llm) -> None:
    await _article(session)
    fake_llm.fail = True
    answer = await best_answer(session, "燃气表没电了怎么办", channel="webchat")
    assert answer is not None and answer.startswith("【IC卡表如何更换电池】") and "碱性电池" in answer
    assert fake_llm.requests  # it was tried


async def test_without_the_setting_no_llm_is_called(session, monkeypatch) -> None:
    monkeypatch.delenv("GASDESK_LLM_BASE_URL", raising=False)
    reset_settings_cache()
    await _article(session)
    answer = await best_answer(session, "燃气表没电了怎么办", channel="webchat")
    assert answer is not None and answer.startswith("【IC卡表如何更换电池】")


async def test_off_topic_questions_never_reach_the_llm(session, fake_llm) -> None:
    await _article(session)
    assert await best_answer(session, "明天北京天气怎么样", channel="webchat") is None
    assert fake_llm.requests == []
