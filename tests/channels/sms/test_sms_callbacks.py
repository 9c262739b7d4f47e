"""Delivery receipts and replies pushed by Aliyun and Tencent, parsed into normalised records."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from gasdesk.channels.sms.callbacks import (
    DeliveryReceipt,
    InboundSms,
    callback_ack,
    callback_token,
    check_callback_token,
    parse_aliyun_report,
    parse_aliyun_uplink,
    parse_tencent_reply,
    parse_tencent_status,
)
from gasdesk.config import Settings
from gasdesk.errors import InvalidInput, PermissionDenied

pytestmark = pytest.mark.no_database

ALIYUN_REPORT = [
    {"phone_number": "13800138000", "send_time": "2024-05-03 09:00:01", "report_time": "2024-05-03 09:00:05",
     "success": True, "err_code": "DELIVERED", "err_msg": "用户接收成功", "sms_size": "1",
     "biz_id": "932702304080415357^0", "out_id": "out-42"},
    {"phone_number": "13900139000", "send_time": "2024-05-03 23:59:58", "report_time": "2024-05-04 00:00:03",
     "success": False, "err_code": "MK:0000", "err_msg": "空号", "sms_size": "1",
     "biz_id": "932702304080415358^0", "out_id": ""},
]
ALIYUN_UPLINK = [{"phone_number": "13800138000", "send_time": "2024-05-03 10:15:00", "content": "5",
                  "sign_name": "燃气客服", "dest_code": "1234", "sequence_id": 1234567}]
TENCENT_STATUS = [
    {"user_receive_time": "2024-05-03 09:00:05", "nationcode": "86", "mobile": "13800138000",
     "report_status": "SUCCESS", "errmsg": "DELIVRD", "description": "用户短信送达成功",
     "sid": "2433:f825e6b16e23f73f4123"},
    {"user_receive_time": "2024-05-03 09:00:07", "nationcode": "86", "mobile": "13900139000",
     "report_status": "FAIL", "errmsg": "MN:0001", "description": "空号", "sid": "2433:f825e6b16e23f73f4124"},
]
TENCENT_REPLY = {"extend": "", "mobile": "13800138000", "nationcode": "86", "sign": "燃气客服", "text": "4",
                 "time": 1714702500}


def test_aliyun_report() -> None:
    receipts = parse_aliyun_report(json.dumps(ALIYUN_REPORT).encode())
    assert receipts == [
        DeliveryReceipt(provider_id="932702304080415357^0", phone="13800138000", delivered=True, error_code=None,
                        at=datetime(2024, 5, 3, 1, 0, 5, tzinfo=UTC)),
        # Beijing midnight is 16:00 UTC the day before.
        DeliveryReceipt(provider_id="932702304080415358^0", phone="13900139000", delivered=False,
                        error_code="MK:0000", at=datetime(2024, 5, 3, 16, 0, 3, tzinfo=UTC)),
    ]


def test_aliyun_report_accepts_string_flags_and_parsed_json() -> None:
    item = {**ALIYUN_REPORT[0], "success": "false", "err_code": ""}
    [receipt] = parse_aliyun_report([item])
    assert receipt.delivered is False and receipt.error_code == "UNKNOWN"


def test_aliyun_uplink() -> None:
    assert parse_aliyun_uplink(json.dumps(ALIYUN_UPLINK)) == [
        InboundSms(phone="13800138000", text="5", at=datetime(2024, 5, 3, 2, 15, tzinfo=UTC), provider_ref="1234567")]


def test_tencent_status() -> None:
    receipts = parse_tencent_status(json.dumps(TENCENT_STATUS).encode())
    assert [(r.provider_id, r.phone, r.delivered, r.error_code) for r in receipts] == [
        ("2433:f825e6b16e23f73f4123", "13800138000", True, None),
        ("2433:f825e6b16e23f73f4124", "13900139000", False, "MN:0001"),
    ]
    assert receipts[0].at == datetime(2024, 5, 3, 1, 0, 5, tzinfo=UTC)


def test_tencent_reply_single_object_and_list() -> None:
    expected = [InboundSms(phone="13800138000", text="4", at=datetime.fromtimestamp(1714702500, UTC),
                           provider_ref=None)]
    assert parse_tencent_reply(json.dumps(TENCENT_REPLY).encode()) == expected
    assert parse_tencent_reply([TENCENT_REPLY]) == expected


def test_foreign_numbers_keep_their_country_code() -> None:
    [receipt] = parse_tencent_status([{**TENCENT_STATUS[0], "nationcode": "852", "mobile": "61234567"}])
    assert receipt.phone == "+85261234567"


@pytest.mark.parametrize(("parse", "body", "fragment"), [
    (parse_aliyun_report, b"\xff\xfe", "UTF-8"),
    (parse_aliyun_report, b"not json", "不是 JSON"),
    (parse_aliyun_report, b'{"phone_number": "13800138000"}', "JSON 数组"),
    (parse_aliyun_report, b"[]", "数组为空"),
    (parse_aliyun_report, b"[1]", "第 1 条不是 JSON 对象"),
    (parse_aliyun_report, json.dumps([ALIYUN_REPORT[0], {**ALIYUN_REPORT[1], "biz_id": None}]), "第 2 条的 biz_id 缺失"),
    (parse_aliyun_report, json.dumps([{**ALIYUN_REPORT[0], "success": "yes"}]), "success 应为 true 或 false"),
    (parse_aliyun_report, json.dumps([{**ALIYUN_REPORT[0], "report_time": "2024/05/03"}]), "report_time 不是"),
    (parse_aliyun_report, json.dumps([{**ALIYUN_REPORT[0], "phone_number": "abc"}]), "phone_number 不是电话号码"),
    (parse_aliyun_report, json.dumps([ALIYUN_REPORT[0]] * 1001), "一次最多 1000 条"),
    (parse_aliyun_uplink, json.dumps([{**ALIYUN_UPLINK[0], "content": ["5"]}]), "content 应为字符串"),
    (parse_aliyun_uplink, json.dumps([{**ALIYUN_UPLINK[0], "send_time": 1714702500}]), "send_time 应为字符串"),
    (parse_tencent_status, json.dumps([{**TENCENT_STATUS[0], "report_status": "OK"}]), "SUCCESS 或 FAIL"),
    (parse_tencent_status, json.dumps([{**TENCENT_STATUS[0], "sid": ""}]), "sid 缺失"),
    (parse_tencent_reply, json.dumps({**TENCENT_REPLY, "time": "yesterday"}), "time 不是 Unix 时间戳"),
    (parse_tencent_reply, json.dumps({**TENCENT_REPLY, "time": True}), "time 不是 Unix 时间戳"),
    (parse_tencent_reply, json.dumps({**TENCENT_REPLY, "mobile": None}), "mobile 缺失"),
    (parse_tencent_reply, b'"text"', "JSON 数组"),
])
def test_malformed_pushes_are_invalid_input(parse, body, fragment) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse(body)
    assert fragment in refused.value.message
    assert refused.value.code == "invalid_sms_callback"


def test_messages_never_quote_values() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_aliyun_uplink(json.dumps([{**ALIYUN_UPLINK[0], "phone_number": "138001380001234567890123456789012"}]))
    assert "1380013800" not in refused.value.message


def test_acknowledgements() -> None:
    assert callback_ack("aliyun") == {"code": 0, "msg": "成功"}
    assert callback_ack("tencent") == {"result": 0, "errmsg": "OK"}


def test_callback_token() -> None:
    settings = Settings(sms_callback_token="s3cret-token")
    check_callback_token(settings, "s3cret-token")
    for wrong in (None, "", "s3cret-tokeN", "s3cret-token ", "令牌"):
        with pytest.raises(PermissionDenied) as refused:
            check_callback_token(settings, wrong)
        assert refused.value.code == "bad_callback_token"
    with pytest.raises(PermissionDenied) as disabled:
        check_callback_token(Settings(sms_callback_token=None, simulator=False), "anything")
    assert disabled.value.code == "sms_callback_disabled"
    # In development without a token, the simulator's own (derived from the secret key, not published) works.
    dev = Settings(sms_callback_token=None, simulator=True, secret_key="k" * 40)
    derived = callback_token(dev)
    assert derived and derived != callback_token(Settings(sms_callback_token=None, simulator=True,
                                                          secret_key="j" * 40))
    check_callback_token(dev, derived)
    with pytest.raises(PermissionDenied):
        check_callback_token(dev, "anything")
