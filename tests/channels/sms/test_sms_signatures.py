"""The providers' published signature examples, reproduced byte for byte.

Aliyun: the RPC signature v1 example of the "签名机制" page (DescribeRegions, AccessKeySecret ``testsecret``)
and the SendSms example of the SMS documentation (AccessKeySecret ``testSecret``), whose string to sign is
published as well. Tencent: the TC3-HMAC-SHA256 example of "签名方法 v3" (CVM DescribeInstances at
1551113065); the document masks its SecretKey as ``Gu5t9xGARNpq86cd98joQYCN3*******`` and its published
hashes and signature are computed with that literal string.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from gasdesk.channels.sms.providers import aliyun, tencent
from gasdesk.channels.sms.providers.base import SmsTemplateRef

pytestmark = pytest.mark.no_database

ALIYUN_RPC_EXAMPLE = {
    "Timestamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid", "Action": "DescribeRegions",
    "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "Version": "2014-05-26", "SignatureVersion": "1.0",
}
ALIYUN_SMS_EXAMPLE = {
    "AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123", "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用", "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466", "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007", "TemplateParam": '{"customer":"test"}', "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
ALIYUN_SMS_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001"
    "%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4"
    "%25BF%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1"
    "%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode%3D"
    "SMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D%26Timestamp%3D"
    "2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
)

TC3_PAYLOAD = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
TC3_SECRET_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******"
TC3_SECRET_KEY = "Gu5t9xGARNpq86cd98joQYCN3*******"
TC3_TIMESTAMP = 1551113065


def test_aliyun_rpc_v1_documented_example() -> None:
    assert aliyun.string_to_sign("GET", ALIYUN_RPC_EXAMPLE) == (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1"
        "%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0"
        "%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26")
    assert aliyun.sign("GET", ALIYUN_RPC_EXAMPLE, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    # The Signature parameter itself never takes part.
    assert aliyun.sign("GET", {**ALIYUN_RPC_EXAMPLE, "Signature": "x"}, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_aliyun_send_sms_documented_example() -> None:
    assert aliyun.string_to_sign("GET", ALIYUN_SMS_EXAMPLE) == ALIYUN_SMS_STRING_TO_SIGN
    assert aliyun.sign("GET", ALIYUN_SMS_EXAMPLE, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    # The method is part of what is signed: the provider POSTs, so its signature differs.
    assert aliyun.sign("POST", ALIYUN_SMS_EXAMPLE, "testSecret") != "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_percent_encoding_rules() -> None:
    assert aliyun.percent_encode("a b*c~d") == "a%20b%2Ac~d"
    assert aliyun.percent_encode("+/=&:") == "%2B%2F%3D%26%3A"
    assert aliyun.percent_encode("-_.~AZaz09") == "-_.~AZaz09"
    assert aliyun.percent_encode("燃") == "%E7%87%83"


def test_aliyun_provider_builds_the_documented_parameters() -> None:
    """The provider's own request carries every common parameter and signs them (POST) like the example."""
    provider = aliyun.AliyunSmsProvider(access_key_id="testId", access_key_secret="testSecret",
                                        sign_name="阿里云短信测试专用")
    params = provider.build_params("15300000001", SmsTemplateRef("SMS_71390007", ("customer",)),
                                   {"customer": "test"}, reference="123",
                                   nonce="45e25e9b-0a6f-4070-8c85-2956eda1b466",
                                   now=datetime(2017, 7, 12, 2, 42, 19, tzinfo=UTC))
    signature = params.pop("Signature")
    assert params == {**ALIYUN_SMS_EXAMPLE, "Format": "JSON"}
    assert signature == aliyun.sign("POST", params, "testSecret")


def test_tc3_documented_example() -> None:
    canonical = tencent.canonical_request(
        "POST", "/", "", {"content-type": "application/json; charset=utf-8", "host": "cvm.tencentcloudapi.com"},
        tencent.SIGNED_HEADERS, TC3_PAYLOAD)
    assert hashlib.sha256(TC3_PAYLOAD).hexdigest() == "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    assert canonical == ("POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
                         "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064")
    to_sign = tencent.string_to_sign(TC3_TIMESTAMP, "cvm", canonical)
    assert to_sign == ("TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
                       "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031")
    assert tencent.signature(TC3_SECRET_KEY, "2019-02-25", "cvm", to_sign) == \
        "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    assert tencent.authorization(TC3_SECRET_ID, TC3_SECRET_KEY, timestamp=TC3_TIMESTAMP, service="cvm",
                                 host="cvm.tencentcloudapi.com", payload=TC3_PAYLOAD) == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c")


def test_tc3_scope_date_is_the_utc_day() -> None:
    """1551113065 is 2019-02-26 00:44:25 in Beijing but 2019-02-25 in UTC: the scope takes the UTC day."""
    assert tencent.utc_date(TC3_TIMESTAMP) == "2019-02-25"


def test_tencent_provider_request_shape() -> None:
    provider = tencent.TencentSmsProvider(secret_id="AKID-x", secret_key="key", sdk_app_id="1400000000",
                                          sign_name="燃气客服", endpoint="http://127.0.0.1:8123/")
    body, headers = provider.build_request("13800138000", SmsTemplateRef("123456", ("a", "b")),
                                           {"b": "二", "a": "一"}, reference="msg-7",
                                           now=datetime.fromtimestamp(TC3_TIMESTAMP, UTC))
    assert body.decode() == ('{"PhoneNumberSet":["+8613800138000"],"SmsSdkAppId":"1400000000","SignName":"燃气客服",'
                             '"TemplateId":"123456","TemplateParamSet":["一","二"],"SessionContext":"msg-7"}')
    assert headers["Host"] == "127.0.0.1:8123"
    assert headers["X-TC-Action"] == "SendSms" and headers["X-TC-Version"] == "2021-01-11"
    assert headers["X-TC-Timestamp"] == str(TC3_TIMESTAMP) and headers["X-TC-Region"] == "ap-guangzhou"
    assert headers["Authorization"] == tencent.authorization("AKID-x", "key", timestamp=TC3_TIMESTAMP, service="sms",
                                                             host="127.0.0.1:8123", payload=body)
    assert "/2019-02-25/sms/tc3_request, SignedHeaders=content-type;host, " in headers["Authorization"]
