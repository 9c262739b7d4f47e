"""Two pieces of the call logic: the ``hours`` node with a branch's holiday schedule (a closed branch sends the
caller down the closed path), and the capacity setting, which limits the calls of one process."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from telephony_kit import FakeCaller, SilentRenderer, assert_consistent, call_rows

from gasdesk import clock
from gasdesk.audit.service import Actor
from gasdesk.branches.service import do_save_branch, do_set_holiday
from gasdesk.config import reset_settings_cache
from gasdesk.db import commit
from gasdesk.routing.models import SkillGroup
from gasdesk.telephony import controller, service
from gasdesk.telephony.models import Call, CallState

SETUP = Actor.system("test", "test")
BEIJING = ZoneInfo("Asia/Shanghai")
WEDNESDAY = date(2026, 11, 25)
WEEKDAYS = {str(d): "08:30-17:00" for d in range(1, 6)}


@pytest.fixture
def prompts(tmp_path: Path) -> SilentRenderer:
    return SilentRenderer(tmp_path / "prompts")


def _hours_script(branch_id: int, group: str = "") -> dict:
    return {"start": "hours", "nodes": {
        "hours": {"kind": "hours", "group": group, "branch_id": branch_id, "open": "opened", "closed": "closed"},
        "opened": {"kind": "hangup", "prompt": "营业中，再见。"},
        "closed": {"kind": "hangup", "prompt": "今日休息，再见。"},
    }}


async def _use(session, body: dict) -> None:
    row = await service.do_save_ivr_script(session, SETUP, body)
    await service.do_activate_ivr_script(session, SETUP, row.version)
    await commit(session)


async def _path_at(moment: datetime, prompts: SilentRenderer, number: str) -> list[str]:
    clock.set_now(moment)
    caller = FakeCaller(caller=number)
    await asyncio.wait_for(controller.handle_call(caller, prompts=prompts), timeout=10)
    rows = await call_rows(caller.info.call_ref)
    assert_consistent(rows)
    return rows.path


async def test_the_hours_node_follows_the_branchs_holiday_schedule(session, prompts) -> None:
    branch = await do_save_branch(session, SETUP, branch=None, name="和平营业厅", district="和平区",
                                  address="和平路 1 号", phone="024-12345678", weekly_hours=WEEKDAYS)
    await commit(session)
    await _use(session, _hours_script(branch.id))
    ten = datetime(2026, 11, 25, 10, 0, tzinfo=BEIJING)
    assert await _path_at(ten, prompts, "13900000071") == ["hours", "opened"], "an ordinary Wednesday"

    await do_set_holiday(session, SETUP, branch, WEDNESDAY, "", "临时停业")
    await commit(session)
    assert await _path_at(ten, prompts, "13900000072") == ["hours", "closed"], "closed all day by the schedule"

    await do_set_holiday(session, SETUP, branch, WEDNESDAY, "12:00-14:00", "缩短营业")
    await commit(session)
    assert await _path_at(ten, prompts, "13900000073") == ["hours", "closed"], "outside the holiday's hours"
    assert await _path_at(datetime(2026, 11, 25, 13, 0, tzinfo=BEIJING), prompts, "13900000074") == [
        "hours", "opened"]
    # the day after the holiday the weekly hours apply again
    assert await _path_at(datetime(2026, 11, 26, 10, 0, tzinfo=BEIJING), prompts, "13900000075") == [
        "hours", "opened"]

    # a Sunday, with no holiday entry: the weekly hours say closed
    assert await _path_at(datetime(2026, 11, 29, 10, 0, tzinfo=BEIJING), prompts, "13900000076") == [
        "hours", "closed"]


async def test_the_hours_node_needs_both_the_group_and_the_branch_open(session, prompts) -> None:
    await session.execute(update(SkillGroup).where(SkillGroup.code == "gas").values(
        working_hours={str(d): "08:00-18:00" for d in range(1, 6)}))
    branch = await do_save_branch(session, SETUP, branch=None, name="沈河营业厅", district="沈河区",
                                  address="沈河路 2 号", phone="024-87654321",
                                  weekly_hours={"3": "09:00-12:00", "6": "09:00-12:00"})
    await commit(session)
    await _use(session, _hours_script(branch.id, group="gas"))
    wednesday = datetime(2026, 11, 25, 10, 0, tzinfo=BEIJING)
    assert await _path_at(wednesday, prompts, "13900000077") == ["hours", "opened"], "both open"
    assert await _path_at(wednesday.replace(hour=13), prompts, "13900000078") == ["hours", "closed"], \
        "the group is open, the branch is not"
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=BEIJING)
    assert await _path_at(saturday, prompts, "13900000079") == ["hours", "closed"], "the branch is open, the group not"
    # a branch that does not exist (deleted after the script was written) counts as closed
    await _use(session, _hours_script(branch.id + 1000))
    assert await _path_at(wednesday, prompts, "13900000080") == ["hours", "closed"]


async def test_the_capacity_limit_counts_this_processs_calls_only(session, prompts, monkeypatch) -> None:
    """``telephony_max_concurrent_calls`` is per process: each back-end process answers its own calls, so a
    deployment's total is the limit times the processes. Calls in progress elsewhere (rows another process is
    carrying) do not count against this one; this process's own calls do."""
    monkeypatch.setenv("GASDESK_TELEPHONY_MAX_CONCURRENT_CALLS", "1")
    reset_settings_cache()
    # another process is carrying three calls right now (their rows say so)
    for i in range(3):
        session.add(Call(backend="freeswitch", call_ref=f"elsewhere-{i}", state=CallState.talking.value,
                         started_at=clock.utcnow()))
    await commit(session)
    served = FakeCaller(inputs=[], caller="13900000091")  # hangs up at the main menu
    await asyncio.wait_for(controller.handle_call(served, prompts=prompts), timeout=10)
    rows = await call_rows(served.info.call_ref)
    assert rows.call.hangup_cause != "over_capacity" and rows.path == ["main"]

    # while one call of this process is in progress, the next one hears the overflow prompt
    holding = FakeCaller(inputs=["1"], caller="13900000092")  # a leak: it waits in the queue
    task = asyncio.create_task(asyncio.wait_for(controller.handle_call(holding, prompts=prompts), timeout=10))
    for _ in range(200):
        if controller.active_call_count() == 1 and holding.ops:
            break
        await asyncio.sleep(0.01)
    refused = FakeCaller(caller="13900000093")
    await asyncio.wait_for(controller.handle_call(refused, prompts=prompts), timeout=10)
    assert (await call_rows(refused.info.call_ref)).call.hangup_cause == "over_capacity"
    holding.gone = True
    await task
    assert controller.active_call_count() == 0
