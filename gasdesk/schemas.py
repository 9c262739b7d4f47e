"""What every response model shares: the JSON a route returns is exactly its model, nothing more.

Handlers build plain dicts (often with a service's ``*_out``/``*_wire`` function shared with sockets and
pages) and name the model with ``response_model=``: FastAPI validates the dict against it and /openapi.json
documents the shape. ``extra="forbid"`` makes a key missing from the model an error (a 500 in tests) instead
of silently dropping it from the response.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema


class Out(BaseModel):
    """Base of response models: exactly the declared keys."""

    model_config = ConfigDict(extra="forbid")


IsoDatetime = Annotated[
    datetime,
    # datetime.isoformat() ("+00:00"), as the API has always sent, not pydantic's "Z".
    PlainSerializer(lambda value: value.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An aware datetime sent as ``isoformat()``."""
