"""Call records in the resident's history, recordings for staff only (audited, sealed at rest, deleted after
the retention period), and the IVR script versions over the API."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from telephony_kit import FakeCaller, SilentRenderer, call_rows

from gasdesk import clock
from gasdesk.audit.models import AuditEntry
from gasdesk.config import get_settings
from gasdesk.db import commit
from gasdesk.telephony import controller
from gasdesk.telephony.ivr.script import DEFAULT_SCRIPT
from gasdesk.telephony.models import CallRecording, IvrScript
from gasdesk.telephony.service import purge_recordings
from tests.factories import desk_agent, login, page_csrf_token, staff_user


@pytest.fixture
def prompts(tmp_path: Path) -> SilentRenderer:
    return SilentRenderer(tmp_path / "prompts")


async def _answered_call(factory, prompts, phone: str = "13900000031"):
    customer = await factory.customer(phones=[phone])
    agent = await desk_agent(factory)
    caller = FakeCaller(inputs=["0"], caller=phone)
    await asyncio.wait_for(controller.handle_call(caller, prompts=prompts), timeout=10)
    return customer, agent, await call_rows(caller.info.call_ref)


async def test_the_call_shows_in_the_customer_360_with_its_recording(client, session, factory, prompts) -> None:
    customer, agent, rows = await _answered_call(factory, prompts)
    recording = await session.scalar(select(CallRecording).where(CallRecording.call_id == rows.call.id))
    # sealed at rest: no WAV header on disk
    stored = get_settings().var_dir / recording.path
    assert recording.path.endswith(".sealed") and not stored.read_bytes().startswith(b"RIFF")

    headers = await factory.headers("agent")
    calls = (await client.get(f"/api/v1/customers/{customer.id}/calls", headers=headers)).json()
    assert len(calls) == 1
    assert calls[0]["ivr_path"] == ["main", "office_hours", "to_agent"]
    assert calls[0]["agent_name"] == agent.display_name and calls[0]["hangup_by"] == "agent"
    assert calls[0]["recording_url"] == f"/api/v1/calls/recordings/{recording.id}"
    assert "13900000031" not in str(calls)

    await login(client, agent.username)
    page = (await client.get(f"/customers/{customer.id}")).text
    assert "来电" in page and "导航：main → office_hours → to_agent" in page
    assert f'src="/api/v1/calls/recordings/{recording.id}"' in page

    played = await client.get(f"/api/v1/calls/recordings/{recording.id}")
    assert played.status_code == 200 and played.headers["content-type"] == "audio/wav"
    assert played.content.startswith(b"RIFF") and hashlib.sha256(played.content).hexdigest() == recording.sha256
    audit = await session.scalar(select(AuditEntry).where(AuditEntry.action == "call.recording_play"))
    assert audit.actor_id == agent.id and audit.changes["after"] == {"recording_id": recording.id}


async def test_recordings_are_for_staff_only(client, session, factory, prompts) -> None:
    _, _, rows = await _answered_call(factory, prompts, "13900000032")
    recording = await session.scalar(select(CallRecording).where(CallRecording.call_id == rows.call.id))
    url = f"/api/v1/calls/recordings/{recording.id}"
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, headers=await factory.headers("field_crew"))).status_code == 403
    assert (await client.get(url, headers=await factory.headers("dispatcher"))).status_code == 200


async def test_recordings_past_retention_are_deleted(client, session, factory, prompts) -> None:
    _, _, rows = await _answered_call(factory, prompts, "13900000033")
    recording = await session.scalar(select(CallRecording).where(CallRecording.call_id == rows.call.id))
    stored = get_settings().var_dir / recording.path
    assert await purge_recordings(session) == 0
    clock.set_now(clock.utcnow() + timedelta(days=get_settings().telephony_recording_retention_days + 1))
    assert await purge_recordings(session) == 1
    await commit(session)
    await session.refresh(recording)
    assert recording.deleted_at is not None and not stored.exists()
    response = await client.get(f"/api/v1/calls/recordings/{recording.id}", headers=await factory.headers("agent"))
    assert response.status_code == 404


async def test_ivr_script_versions(client, session, factory, prompts) -> None:
    headers = await factory.headers("supervisor")
    listed = (await client.get("/api/v1/ivr/scripts", headers=headers)).json()
    assert [(s["version"], s["status"]) for s in listed] == [(1, "active")]
    assert (await client.get("/api/v1/ivr/scripts", headers=await factory.headers("agent"))).status_code == 403

    bad = copy.deepcopy(DEFAULT_SCRIPT)
    bad["nodes"]["main"]["options"]["5"] = "nowhere"
    checked = (await client.post("/api/v1/ivr/scripts/validate", json={"body": bad}, headers=headers)).json()
    assert checked == {"ok": False, "problems": ["节点“main”指向不存在的节点“nowhere”"]}
    refused = await client.post("/api/v1/ivr/scripts", json={"body": bad}, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_ivr_script"

    edited = copy.deepcopy(DEFAULT_SCRIPT)
    edited["nodes"]["bye"]["prompt"] = "感谢来电，祝您生活愉快。"
    saved = await client.post("/api/v1/ivr/scripts", json={"body": edited, "note": "改结束语"}, headers=headers)
    assert saved.status_code == 201 and (saved.json()["version"], saved.json()["status"]) == (2, "draft")
    activated = await client.post("/api/v1/ivr/scripts/2/activate", headers=headers)
    assert activated.json()["status"] == "active"
    statuses = dict((await session.execute(select(IvrScript.version, IvrScript.status))).all())
    assert statuses == {1: "retired", 2: "active"}
    actions = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "ivr_script")
                                         .order_by(AuditEntry.id)))
    assert actions == ["ivr_script.activate", "ivr_script.save", "ivr_script.activate"]
    detail = (await client.get("/api/v1/ivr/scripts/2", headers=headers)).json()
    assert detail["body"]["nodes"]["bye"]["prompt"] == "感谢来电，祝您生活愉快。"

    caller = FakeCaller(inputs=["9", "9", "9"], caller="13900000034")  # three wrong keys, then the caller hangs up
    await asyncio.wait_for(controller.handle_call(caller, prompts=prompts), timeout=10)
    assert (await call_rows(caller.info.call_ref)).call.ivr_script_version == 2


async def test_the_admin_page_edits_checks_and_activates_the_script(client, session, factory) -> None:
    admin = await staff_user(session, "supervisor")
    await login(client, admin.username)
    page = await client.get("/admin/ivr")
    assert page.status_code == 200 and "第 1 版" in page.text and "使用中" in page.text
    token = await page_csrf_token(client)

    broken = await client.post("/admin/ivr", data={"script": '{"start": "main", "nodes": {', "csrf_token": token})
    assert broken.status_code == 422 and "JSON 格式错误：第 1 行" in broken.text
    bad = copy.deepcopy(DEFAULT_SCRIPT)
    bad["nodes"]["main"]["timeout_s"] = 99
    refused = await client.post("/admin/ivr", data={"script": json.dumps(bad, ensure_ascii=False), "csrf_token": token})
    assert refused.status_code == 422 and "nodes.main.timeout_s：数值过大" in refused.text
    assert await session.scalar(select(IvrScript.id).where(IvrScript.version == 2)) is None

    good = copy.deepcopy(DEFAULT_SCRIPT)
    good["nodes"]["bye"]["prompt"] = "再见。"
    saved = await client.post("/admin/ivr", data={"script": json.dumps(good, ensure_ascii=False), "note": "短结束语",
                                                  "activate": "1", "csrf_token": token})
    assert saved.status_code == 303 and saved.headers["location"] == "/admin/ivr?version=2"
    statuses = dict((await session.execute(select(IvrScript.version, IvrScript.status))).all())
    assert statuses == {1: "retired", 2: "active"}
    back = await client.post("/admin/ivr/1/activate", data={"csrf_token": token})
    assert back.status_code == 303
    session.expire_all()
    statuses = dict((await session.execute(select(IvrScript.version, IvrScript.status))).all())
    assert statuses == {1: "active", 2: "retired"}
