"""Recorded prompts: every fixed prompt of the script has a stable key the engine renders it by, admins upload a
recording for a key (checked, converted, audited), staff listen to it, and deleting it brings the TTS back."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from telephony_kit import FakeCaller, SilentRenderer, call_rows

from gasdesk.audit.models import AuditEntry
from gasdesk.config import get_settings, reset_settings_cache
from gasdesk.telephony import controller
from gasdesk.telephony.ivr.script import DEFAULT_SCRIPT, Script, prompt_slots
from gasdesk.telephony.media import Prompt
from gasdesk.telephony.tts import PromptRenderer
from gasdesk.web.body_limit import body_cap
from tests.factories import login, page_csrf_token, staff_user

MAIN_PROMPT = DEFAULT_SCRIPT["nodes"]["main"]["prompt"]


def _tone(path: Path, seconds: float = 0.6) -> bytes:
    subprocess.run(["sox", "-q", "-n", "-r", "16000", "-c", "1", "-t", "wav", str(path), "synth", str(seconds),
                    "sine", "440"], check=True, timeout=20)
    return path.read_bytes()


@pytest.fixture
def wav(tmp_path: Path) -> bytes:
    return _tone(tmp_path / "tone.wav")


def test_every_fixed_prompt_of_the_default_script_has_a_key() -> None:
    slots = {slot.key: slot for slot in prompt_slots(Script.model_validate(DEFAULT_SCRIPT))}
    assert slots["main.prompt"].text == MAIN_PROMPT and slots["main.prompt"].node == "main"
    assert {"main.invalid_prompt", "leak.prompt", "id_balance.account_prompt", "id_balance.last4_prompt",
            "sms_guide.sent_prompt", "to_agent.prompt", "bye.prompt", "prompts.wait", "prompts.overflow",
            "prompts.queue_timeout"} <= set(slots)
    assert slots["prompts.wait"].node is None and slots["prompts.wait"].label == "排队等待"
    # texts built per call are never replaced by a recording
    assert not any(key.endswith((".hint_prompt", ".intro", ".unknown_area_prompt")) for key in slots)


async def test_the_engine_and_controller_render_each_fixed_prompt_by_its_key(session, factory, tmp_path,
                                                                             monkeypatch) -> None:
    monkeypatch.setenv("GASDESK_TELEPHONY_QUEUE_POLL_S", "0.02")
    monkeypatch.setenv("GASDESK_TELEPHONY_QUEUE_WAIT_LIMIT_S", "0.2")
    reset_settings_cache()
    prompts = SilentRenderer(tmp_path / "p")
    # a wrong key, then 0: nobody staffed → busy → the SMS offer times out → bye
    caller = FakeCaller(inputs=["7", "0", ""], caller="13900000051")
    await asyncio.wait_for(controller.handle_call(caller, prompts=prompts), timeout=10)
    rendered = list(zip(prompts.keys, prompts.texts, strict=True))
    assert ("main.prompt", MAIN_PROMPT) in rendered
    assert ("main.invalid_prompt", "您的输入有误。") in rendered
    assert ("bye.prompt", "感谢您的来电，再见。") in rendered
    assert (await call_rows(caller.info.call_ref)).path[-1] == "bye"


async def test_an_uploaded_recording_plays_instead_of_the_tts(client, session, factory, wav) -> None:
    headers = await factory.headers("admin")
    uploaded = await client.post("/api/v1/ivr/prompts/main.prompt", headers=headers,
                                 files={"file": ("welcome.wav", wav, "audio/wav")})
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert body["key"] == "main.prompt" and body["node"] == "main" and body["text"] == MAIN_PROMPT
    assert body["uploaded"] is True and abs(body["duration_s"] - 0.6) < 0.05
    assert body["audio_url"] == "/api/v1/ivr/prompts/main.prompt/audio"

    class Listening(FakeCaller):
        """Keeps the files it was played: the upload, not a synthesis."""

        played: list[Path]

        async def collect_digits(self, prompt: Prompt | None, **kw) -> str:  # type: ignore[override]
            self.played = [*getattr(self, "played", []), prompt.path] if prompt else getattr(self, "played", [])
            return await super().collect_digits(prompt, **kw)

    # the real renderer: the caller hangs up at the main menu, so no text is synthesised at all
    caller = Listening(inputs=[], caller="13900000052")
    renderer = PromptRenderer.from_settings(get_settings())
    await asyncio.wait_for(controller.handle_call(caller, prompts=renderer), timeout=10)
    stored = get_settings().var_dir / "prompts" / "uploaded" / "main.prompt.wav"
    assert caller.played == [stored] and caller.heard == [MAIN_PROMPT]
    assert not (get_settings().var_dir / "prompts" / "cache").exists()

    audit = await session.scalar(select(AuditEntry).where(AuditEntry.action == "prompt.upload"))
    assert audit.entity_id == "main.prompt" and audit.changes["after"]["duration_s"] == body["duration_s"]


async def test_prompt_routes_roles_and_errors(client, session, factory, wav) -> None:
    admin, supervisor = await factory.headers("admin"), await factory.headers("supervisor")
    agent, crew = await factory.headers("agent"), await factory.headers("field_crew")
    listed = (await client.get("/api/v1/ivr/prompts", headers=supervisor)).json()
    assert "main.prompt" in [p["key"] for p in listed] and not any(p["uploaded"] for p in listed)
    assert (await client.get("/api/v1/ivr/prompts", headers=agent)).status_code == 403

    files = {"file": ("a.wav", wav, "audio/wav")}
    assert (await client.post("/api/v1/ivr/prompts/main.prompt", headers=supervisor, files=files)).status_code == 403
    unknown = await client.post("/api/v1/ivr/prompts/nowhere.prompt", headers=admin, files=files)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "prompt_key_not_found"
    bad_key = await client.post("/api/v1/ivr/prompts/Main..X", headers=admin, files=files)
    assert bad_key.status_code == 422
    not_audio = await client.post("/api/v1/ivr/prompts/bye.prompt", headers=admin,
                                  files={"file": ("x.wav", b"%PDF-1.4 not audio", "audio/wav")})
    assert not_audio.status_code == 422 and not_audio.json()["error"]["code"] == "invalid_prompt_audio"
    no_file = await client.post("/api/v1/ivr/prompts/bye.prompt", headers=admin, data={"x": "1"}, files={"y": ("", b"")})
    assert no_file.status_code == 422

    assert (await client.post("/api/v1/ivr/prompts/bye.prompt", headers=admin, files=files)).status_code == 201
    audio = await client.get("/api/v1/ivr/prompts/bye.prompt/audio", headers=agent)
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert audio.content.startswith(b"RIFF")
    assert (await client.get("/api/v1/ivr/prompts/bye.prompt/audio", headers=crew)).status_code == 403
    assert (await client.get("/api/v1/ivr/prompts/main.prompt/audio", headers=agent)).status_code == 404

    assert (await client.delete("/api/v1/ivr/prompts/bye.prompt", headers=supervisor)).status_code == 403
    deleted = await client.delete("/api/v1/ivr/prompts/bye.prompt", headers=admin)
    assert deleted.status_code == 200 and deleted.json() == {"key": "bye.prompt", "uploaded": False}
    assert (await client.get("/api/v1/ivr/prompts/bye.prompt/audio", headers=agent)).status_code == 404
    again = await client.delete("/api/v1/ivr/prompts/bye.prompt", headers=admin)
    assert again.status_code == 404 and again.json()["error"]["code"] == "prompt_upload_not_found"
    actions = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "prompt")
                                         .order_by(AuditEntry.id)))
    assert actions == ["prompt.upload", "prompt.delete"]


async def test_the_upload_cap_is_the_smaller_of_the_route_cap_and_the_setting(client, factory, tmp_path,
                                                                             monkeypatch) -> None:
    assert body_cap("POST", "/api/v1/ivr/prompts/main.prompt") == 5 * 1024 * 1024 + 64 * 1024
    assert body_cap("POST", "/admin/ivr/prompts/main.prompt") == 5 * 1024 * 1024 + 64 * 1024
    monkeypatch.setenv("GASDESK_TTS_UPLOAD_MAX_BYTES", "4096")
    reset_settings_cache()
    big = _tone(tmp_path / "long.wav", seconds=3.0)  # 96 KB: above the setting + 64 KB of multipart framing
    assert len(big) > 4096 + 64 * 1024
    response = await client.post("/api/v1/ivr/prompts/main.prompt", headers=await factory.headers("admin"),
                                 files={"file": ("long.wav", big, "audio/wav")})
    assert response.status_code == 413


async def test_the_admin_page_lists_uploads_and_deletes_recordings(client, session, factory, wav) -> None:
    supervisor = await staff_user(session, "supervisor")
    await login(client, supervisor.username)
    page = (await client.get("/admin/ivr")).text
    assert "录音提示音" in page and "<code>main.prompt</code>" in page and "语音合成" in page
    assert 'action="/admin/ivr/prompts/main.prompt"' not in page, "only admins get the upload forms"

    admin = await staff_user(session, "admin")
    await login(client, admin.username)
    page = (await client.get("/admin/ivr")).text
    assert 'action="/admin/ivr/prompts/main.prompt" enctype="multipart/form-data"' in page
    token = await page_csrf_token(client)
    del client.headers["X-CSRF-Token"]  # as the browser's form sends it: in the multipart body only
    refused = await client.post("/admin/ivr/prompts/main.prompt", files={"file": ("a.wav", wav, "audio/wav")})
    assert refused.status_code == 403, "no CSRF token, nothing stored"
    done = await client.post("/admin/ivr/prompts/main.prompt", data={"csrf_token": token},
                             files={"file": ("a.wav", wav, "audio/wav")})
    assert done.status_code == 303 and done.headers["location"] == "/admin/ivr#prompts"
    page = (await client.get("/admin/ivr")).text
    assert 'src="/api/v1/ivr/prompts/main.prompt/audio"' in page and "删除录音" in page

    bad = await client.post("/admin/ivr/prompts/bye.prompt", data={"csrf_token": token},
                            files={"file": ("a.wav", b"RIFF\x00\x00\x00\x00WAVEjunk", "audio/wav")})
    assert bad.status_code == 422 and "bye.prompt：" in bad.text and 'id="prompt-error"' in bad.text

    gone = await client.post("/admin/ivr/prompts/main.prompt/delete", data={"csrf_token": token})
    assert gone.status_code == 303
    page = (await client.get("/admin/ivr")).text
    assert 'src="/api/v1/ivr/prompts/main.prompt/audio"' not in page
    actions = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "prompt")
                                         .order_by(AuditEntry.id)))
    assert actions == ["prompt.upload", "prompt.delete"]
