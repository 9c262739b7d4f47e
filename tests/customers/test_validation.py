"""Checking untrusted customer fields: phones, 户号, ID numbers, names."""

from __future__ import annotations

import pytest

from gasdesk.customers.validation import (
    check_account_no,
    check_id_card,
    check_name,
    check_phone,
    mask_id_card,
    mask_phone,
    normalize_phone,
    to_halfwidth,
)
from gasdesk.errors import InvalidInput
from tests.factories import bad_checksum, make_id_card

pytestmark = pytest.mark.no_database  # pure computation: run once, in the SQLite pass


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800001234", "13800001234"),
        ("138 0000 1234", "13800001234"),
        ("138-0000-1234", "13800001234"),
        ("+86 138 0000 1234", "13800001234"),
        ("+8613800001234", "13800001234"),
        ("0086 13800001234", "13800001234"),
        ("１３８００００１２３４", "13800001234"),  # full-width digits
        ("024-23416600", "02423416600"),  # landline keeps its area code
        ("(024) 2341 6600", "02423416600"),
        ("010-8888 6666", "01088886666"),
    ],
)
def test_check_phone_accepts_and_normalises(raw: str, expected: str) -> None:
    assert check_phone(raw) == expected


@pytest.mark.parametrize("raw", ["", "12345", "12800001234", "1380000123", "138000012345", "abc", "2341 6600"])
def test_check_phone_rejects(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_phone(raw)
    assert info.value.code == "invalid_phone"
    assert "电话号码格式不正确" in info.value.message


def test_normalize_phone_only_strips_86_from_13_digit_numbers() -> None:
    # an 11-digit mobile that happens to start with 86 is not a country code
    assert normalize_phone("8613800001234") == "13800001234"
    assert normalize_phone("86123456789") == "86123456789"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("2103345678", "2103345678"), ("2103 345 678", "2103345678"), ("2103-3456-78", "2103345678"),
     ("２１０３３４５６７８", "2103345678"), ("12345678", "12345678"), ("123456789012", "123456789012")],
)
def test_check_account_no_accepts(raw: str, expected: str) -> None:
    assert check_account_no(raw) == expected


@pytest.mark.parametrize("raw", ["", "1234567", "1234567890123", "21O3345678", "ABCDEFGHIJ", "2103.345678"])
def test_check_account_no_rejects(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_account_no(raw)
    assert info.value.code == "invalid_account_no"
    assert "户号格式不正确" in info.value.message


@pytest.mark.parametrize("valid", ["11010519491231002X", "440524188001010014", "11010119900307803X"])
def test_check_id_card_accepts_published_examples(valid: str) -> None:
    assert check_id_card(valid) == valid


def test_check_id_card_uppercases_x_and_folds_fullwidth() -> None:
    assert check_id_card("11010519491231002x") == "11010519491231002X"
    assert check_id_card(" ４４０５２４１８８００１０１００１４ ") == "440524188001010014"


def test_check_id_card_generated_numbers_round_trip() -> None:
    for n in range(30):
        card = make_id_card(n)
        assert check_id_card(card) == card
        with pytest.raises(InvalidInput, match="校验位"):
            check_id_card(bad_checksum(card))


@pytest.mark.parametrize("raw", ["110105194912310021", "44052418800101001X"])
def test_check_id_card_rejects_bad_checksum(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_id_card(raw)
    assert info.value.code == "invalid_id_card"
    assert "校验位" in info.value.message


@pytest.mark.parametrize("raw", ["", "1101051949123100", "1101051949123100211", "11010519491231002Y", "X10105194912310021"])
def test_check_id_card_rejects_bad_format(raw: str) -> None:
    with pytest.raises(InvalidInput, match="18 位"):
        check_id_card(raw)


def test_check_name() -> None:
    assert check_name("  张伟 ") == "张伟"
    assert check_name("欧阳  娜娜") == "欧阳 娜娜"
    assert check_name("Ｌｉ　Ｌｅｉ") == "Li Lei"
    with pytest.raises(InvalidInput, match="姓名不能为空"):
        check_name("   ")
    with pytest.raises(InvalidInput, match="姓名过长"):
        check_name("张" * 61)


def test_masks_and_halfwidth() -> None:
    assert mask_phone("13800001234") == "138****1234"
    assert mask_id_card("11010519491231002X") == "110105********002X"
    assert mask_id_card("short") == "****"
    assert to_halfwidth("１２３ＡＢＣ（）") == "123ABC()"
