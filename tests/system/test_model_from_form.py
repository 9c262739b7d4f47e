"""``gasdesk.schemas.model_from_form``: how every admin page turns a form into a model, or a Chinese error."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, field_validator

from gasdesk.errors import InvalidInput
from gasdesk.schemas import model_from_form


class ShiftForm(BaseModel):
    name: str = Field(min_length=1, max_length=10)
    hours: int = Field(default=8, ge=1, le=24)

    @field_validator("name")
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if " " in value:
            raise ValueError("班次名称不能有空格")
        return value


LABELS = {"name": "班次名称", "hours": "时长"}


def test_blank_fields_count_as_not_given() -> None:
    assert model_from_form(ShiftForm, {"name": "早班", "hours": ""}, LABELS) == ShiftForm(name="早班", hours=8)


def test_a_bad_field_is_named_by_its_chinese_label() -> None:
    with pytest.raises(InvalidInput) as caught:
        model_from_form(ShiftForm, {"name": "早班", "hours": "99"}, LABELS)
    assert caught.value.message == "时长填写有误" and caught.value.code == "invalid_input"


def test_a_validators_own_message_is_kept() -> None:
    with pytest.raises(InvalidInput) as caught:
        model_from_form(ShiftForm, {"name": "早 班"}, LABELS)
    assert caught.value.message == "班次名称不能有空格"
