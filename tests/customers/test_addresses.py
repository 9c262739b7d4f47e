"""Address normalisation: the same home typed differently gets the same key."""

from __future__ import annotations

import pytest

from gasdesk.customers.addresses import (
    AddressParts,
    chinese_to_int,
    normalize_community,
    normalize_district,
    parse_free_address,
)

pytestmark = pytest.mark.no_database  # pure computation: run once, in the SQLite pass


@pytest.mark.parametrize(
    ("text", "value"),
    [("三", 3), ("十", 10), ("十二", 12), ("二十", 20), ("二十一", 21), ("两", 2), ("一百零五", 105),
     ("五零一", 501), ("一二零一", 1201), ("", None), ("三A", None)],
)
def test_chinese_to_int(text: str, value: int | None) -> None:
    assert chinese_to_int(text) == value


def test_district_and_community_suffixes_are_dropped() -> None:
    assert normalize_district("和平区") == "和平"
    assert normalize_district("浑南新区") == "浑南"
    assert normalize_district(" 康平 县") == "康平"
    assert normalize_community("幸福里小区") == "幸福里"
    assert normalize_community("南湖家园") == "南湖"
    assert normalize_community("和平新村") == "和平"
    assert normalize_community("全运村") == "全运村"


@pytest.mark.parametrize(
    "text",
    [
        "和平区幸福里小区3号楼2单元501室",
        "和平区幸福里三栋二单元501",
        "和平区 幸福里小区 3号楼 2单元 501室",
        "和平区幸福里3-2-0501",
        "和平区幸福里小区３号楼２单元５０１室",
        "和平区幸福里小区三号楼二单元五零一室",
        "和平区幸福里3幢2门501号",
    ],
)
def test_free_text_variants_normalise_to_the_stored_key(text: str) -> None:
    stored = AddressParts(district="和平区", community="幸福里小区", building="3", unit="2", room="501")
    parsed = parse_free_address(text)
    assert parsed is not None, text
    assert parsed.normalized_key() == stored.normalized_key() == "和平|幸福里|3|2|501"


def test_different_homes_do_not_collide() -> None:
    base = parse_free_address("和平区幸福里小区3号楼2单元501室")
    for other in ["和平区幸福里小区3号楼2单元502室", "和平区幸福里小区3号楼1单元501室",
                  "和平区幸福里小区13号楼2单元501室", "铁西区幸福里小区3号楼2单元501室", "和平区南湖家园3号楼2单元501室"]:
        parsed = parse_free_address(other)
        assert parsed is not None
        assert parsed.normalized_key() != base.normalized_key(), other


def test_parse_free_address_parts() -> None:
    parts = parse_free_address("铁西区兴华小区十二号楼三单元一零二室")
    assert parts == AddressParts(district="铁西区", community="兴华小区", building="十二", unit="三", room="一零二")
    assert parts.normalized_key() == "铁西|兴华|12|3|102"
    street = parse_free_address("和平区南湖街道幸福里小区3号楼2单元501室")
    assert street is not None and street.street == "南湖街道" and street.community == "幸福里小区"


@pytest.mark.parametrize("text", ["幸福里小区", "和平区", "张伟", "13800001234", "幸福里3号楼"])
def test_parse_free_address_needs_building_unit_room(text: str) -> None:
    assert parse_free_address(text) is None


def test_display_is_canonical() -> None:
    a = AddressParts(district="和平区", community="幸福里小区", building="三栋", unit="二单元", room="0501室")
    assert a.display() == "和平区幸福里小区3号楼2单元501室"
    b = AddressParts(district="和平区", community="幸福里小区", street="南湖街道")
    assert b.display() == "和平区南湖街道幸福里小区"
