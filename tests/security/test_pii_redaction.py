"""The PII detector: what residents really type, and what it must leave alone."""

from __future__ import annotations

import logging
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gasdesk.security.pii import PiiLogFilter, contains_pii, find_pii, redact_pii
from tests.factories import make_id_card

pytestmark = pytest.mark.no_database  # pure computation: run once, in the SQLite pass

ID_CARD = make_id_card(777, birth="19860412")  # 210102 19860412 777 + check digit


@pytest.mark.parametrize(("text", "expected"), [
    ("我的手机号是13812345678，麻烦回个电话", "我的手机号是[手机号]，麻烦回个电话"),
    ("电话 138 1234 5678 找王师傅", "电话 [手机号] 找王师傅"),
    ("联系我：138-1234-5678", "联系我：[手机号]"),
    ("+86 139-0000-1111 是我老伴的", "[手机号] 是我老伴的"),
    ("0086 13900001111", "[手机号]"),
    ("+8613900001111", "[手机号]"),
    ("(+86)13900001111", "[手机号]"),
    ("手机１３９００００１１１（全角）", "手机[手机号]（全角）"),
    ("家里座机024-23410099没人接", "家里座机[电话]没人接"),
    ("座机(024)23410099", "座机[电话]"),
    ("打010 8888 6666也行", "打[电话]也行"),
    ("电话：23410099", "电话：[电话]"),
    ("户号2100012345，燃气卡充不进去", "户号[户号]，燃气卡充不进去"),
    ("我家户号是 2103 3456 78", "我家户号是 [户号]"),
    ("户号：123456", "户号：[户号]"),
    ("用户号为21000123", "用户号为[户号]"),
    ("2100012345这个号欠费多少", "[户号]这个号欠费多少"),
    ("我要交费，号码 2100012345", "我要交费，号码 [户号]"),
    ("银行卡 6222 0212 3456 7890 128 扣款失败", "银行卡 [银行卡号] 扣款失败"),
    ("邮箱 wang.xiu@example.com 发发票", "邮箱 [邮箱] 发发票"),
])
def test_redacts_identifiers_in_realistic_sentences(text: str, expected: str) -> None:
    assert redact_pii(text) == expected


@pytest.mark.parametrize("written", [
    ID_CARD, ID_CARD.lower(), f"{ID_CARD[:6]} {ID_CARD[6:14]} {ID_CARD[14:]}",
    f"{ID_CARD[:6]}-{ID_CARD[6:14]}-{ID_CARD[14:]}",
    ID_CARD.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")),
])
def test_id_numbers_in_every_common_form(written: str) -> None:
    text = f"我叫王秀英，身份证号{written}，住幸福里小区3号楼2单元501"
    assert redact_pii(text) == "我叫王秀英，身份证号[身份证号]，住幸福里小区3号楼2单元501"
    # without the label as well
    assert redact_pii(f"证件 {written} 办过户") == "证件 [身份证号] 办过户"


def test_an_id_number_with_x_is_not_mistaken_for_a_phone_or_account() -> None:
    card = make_id_card(3, birth="19791231")
    matches = find_pii(f"这是{card}")
    assert [m.kind for m in matches] == ["[身份证号]"]
    assert matches[0].end - matches[0].start == 18


def test_several_identifiers_in_one_message() -> None:
    text = f"我是李建国，电话13611112222，户号2187654321，身份证{ID_CARD}，地址铁西区兴华小区23栋6单元2208室，家里漏气了"
    assert redact_pii(text) == ("我是李建国，电话[手机号]，户号[户号]，身份证[身份证号]，"
                                "地址铁西区兴华小区23栋6单元2208室，家里漏气了")
    assert contains_pii(text)


@pytest.mark.parametrize("text", [
    "3号楼2单元501",
    "朝阳区幸福里小区17号楼4单元1502室暖气不热",
    "2024-01-15 14:30 来修",
    "2024年1月15日下午3点到5点",
    "20240115那天停气了",
    "2024/01/15 缴费1200元",
    "上月用气 35.5 立方，交了 128.60 元",
    "余额还有¥12345678吗",  # an amount, however unlikely
    "表读数12345678方",
    "工单号 GD2024011500001 的进度",
    "表号M1234567890",
    "抢修电话 96777，客服 12345",
    "几点上班？8:30-17:00",
    "采暖面积 120 平，单价 28 元/平",
    "第1、2、3条都试过了",
    "",
])
def test_no_false_positives_on_dates_times_amounts_and_addresses(text: str) -> None:
    assert find_pii(text) == []
    assert redact_pii(text) == text


def test_log_filter_redacts_message_arguments_and_tracebacks() -> None:
    record = logging.LogRecord("gasdesk.test", logging.ERROR, __file__, 1, "frame from %s failed: %s",
                               ("visitor", "户号2100012345 电话13812345678"), None)
    try:
        raise ValueError(f"invalid literal for int() with base 10: '{ID_CARD}'")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert PiiLogFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "2100012345" not in text and "13812345678" not in text and ID_CARD not in text
    assert "frame from visitor failed: 户号[户号] 电话[手机号]" in text and "ValueError" in text


def test_log_filter_cuts_query_strings_from_request_lines() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]',
                               ("127.0.0.1:5000", "/ws/webchat?token=abc.def&phone=13812345678"), None)
    PiiLogFilter().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "WebSocket /ws/webchat" [accepted]'


_AROUND = st.sampled_from(["", "我的是", "电话", "号码：", "麻烦记一下 ", "户主", "，"])
_AFTER = st.sampled_from(["", "，谢谢", " 漏气了", "。3号楼2单元501", "（王女士）"])


@settings(max_examples=200, deadline=None)
@given(before=_AROUND, after=_AFTER, phone=st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
       account=st.from_regex(r"21[0-9]{8}", fullmatch=True),
       birth=st.dates(min_value=date(1930, 1, 1), max_value=date(2010, 12, 31)), serial=st.integers(0, 999))
def test_any_phone_account_or_id_number_disappears(before: str, after: str, phone: str, account: str, birth: date,
                                                   serial: int) -> None:
    card = make_id_card(serial, birth=birth.strftime("%Y%m%d"))
    grouped = f"{phone[:3]} {phone[3:7]} {phone[7:]}"
    for value in (phone, grouped, f"+86{phone}", account, card):
        redacted = redact_pii(before + value + after)
        assert value not in redacted and phone not in redacted.replace(" ", "")
        assert redacted.startswith(before) and redacted.endswith(after)
