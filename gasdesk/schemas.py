"""What every response model shares: the JSON a route returns is exactly its model, nothing more.

Handlers build plain dicts (often with a service's ``*_out``/``*_wire`` function shared with sockets and
pages) and name the model with ``response_model=``: FastAPI validates the dict against it and /openapi.json
documents the shape. ``extra="forbid"`` makes a key missing from the model an error (a 500 in tests) instead
of silently dropping it from the response.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer, ValidationError, WithJsonSchema

from gasdesk.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)


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


def model_from_form(model: type[M], data: Mapping[str, Any], labels: Mapping[str, str]) -> M:
    """``model`` from a page form's fields (blank means not given), or ``InvalidInput`` in Chinese: a validator's
    own message as it is, otherwise the first bad field named by ``labels`` (its Chinese label)."""
    cleaned = {k: v for k, v in data.items() if v not in ("", None, [])}
    try:
        return model.model_validate(cleaned)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first.get("type") == "value_error":
            raise InvalidInput(
                str(first.get("msg", "")).removeprefix("Value error, "), code="invalid_input"
            ) from None
        field = str(first["loc"][0]) if first.get("loc") else ""
        raise InvalidInput(f"{labels.get(field, field)}填写有误", code="invalid_input") from None
