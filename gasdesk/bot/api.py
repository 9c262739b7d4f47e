"""REST access to the bot's understanding, for integrations and for testing the NLU."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES
from gasdesk.bot.nlu import understand
from gasdesk.bot.schemas import UnderstandIn, UnderstandOut

router = APIRouter(prefix="/api/v1/bot", tags=["bot"])


@router.post("/understand", response_model=UnderstandOut)
async def understand_text(body: UnderstandIn, _: User = allow(*ALL_ROLES)) -> UnderstandOut:
    """Intent, confidence and slots of a resident utterance (offline NLU)."""
    # The first call trains the model (~1 s): keep it off the event loop.
    result = await asyncio.to_thread(understand, body.text)
    return UnderstandOut(**result.to_dict())
