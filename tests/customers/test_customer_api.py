"""/api/v1/customers: search by every key, the customer 360 with billing, create/patch with validation."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.config import reset_settings_cache
from gasdesk.customers import billing
from gasdesk.customers.billing import HttpBillingSystem
from gasdesk.customers.models import BillingBalance, UsageRecord
from gasdesk.errors import NotFound, ServiceUnavailable
from tests.factories import make_id_card, table_counts


@pytest.fixture
async def people(factory) -> dict:
    """Three customers; 张伟 lives at 和平区幸福里小区3号楼2单元501室."""
    zhang = await factory.customer(name="张伟", phones=["13800001234", "024-23416600"], account_no="2103345678",
                                   address={"district": "和平区", "community": "幸福里小区", "building": "3",
                                            "unit": "2", "room": "501"})
    li = await factory.customer(name="李娜", phones=["13900005678"], account_no="2100000002",
                                address={"district": "和平区", "community": "幸福里小区", "building": "5",
                                         "unit": "1", "room": "101"})
    wang = await factory.customer(name="王强", phones=["13700007777"], account_no="2100000003",
                                  address={"district": "铁西区", "community": "兴华小区", "building": "12",
                                           "unit": "3", "room": "302"})
    return {"zhang": zhang.id, "li": li.id, "wang": wang.id, "headers": await factory.headers("agent")}


async def ids(client, headers, **params) -> list[int]:
    response = await client.post("/api/v1/customers/search", headers=headers, json=params)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()]


async def test_search_by_phone(client, people) -> None:
    for phone in ["13800001234", "138 0000 1234", "138-0000-1234", "+86 138 0000 1234", "+8613800001234",
                  "１３８００００１２３４", "024-23416600", "(024)2341 6600"]:
        assert await ids(client, people["headers"], phone=phone) == [people["zhang"]], phone


async def test_search_result_shape(client, people) -> None:
    response = await client.post("/api/v1/customers/search", headers=people["headers"], json={"phone": "13800001234"})
    assert response.json() == [{
        "id": people["zhang"], "name": "张伟", "phones": ["13800001234", "02423416600"], "tags": [],
        "account_nos": ["2103345678"], "addresses": ["和平区幸福里小区3号楼2单元501室"],
    }]


async def test_search_by_account_no(client, people) -> None:
    for account_no in ["2103345678", "2103 345 678", "2103-3456-78", "２１０３３４５６７８"]:
        assert await ids(client, people["headers"], account_no=account_no) == [people["zhang"]], account_no


async def test_search_by_exact_name(client, people, factory) -> None:
    other = await factory.customer(name="张伟", phones=["13600000000"])
    assert sorted(await ids(client, people["headers"], name="张伟")) == sorted([people["zhang"], other.id])
    assert await ids(client, people["headers"], name=" 张伟 ") != []
    assert await ids(client, people["headers"], name="张") == [], "names match exactly, not by prefix"


async def test_search_by_full_address_typed_differently(client, people) -> None:
    for address in ["和平区幸福里小区3号楼2单元501室", "和平区幸福里三栋二单元501", "和平区 幸福里 3-2-0501",
                    "和平区幸福里小区三号楼二单元五零一室"]:
        assert await ids(client, people["headers"], address=address) == [people["zhang"]], address


async def test_search_by_community_partial(client, people) -> None:
    assert sorted(await ids(client, people["headers"], address="幸福里")) == sorted([people["zhang"], people["li"]])
    assert sorted(await ids(client, people["headers"], address="幸福里小区")) == sorted([people["zhang"], people["li"]])
    assert await ids(client, people["headers"], address="兴华") == [people["wang"]]
    assert await ids(client, people["headers"], address="和平区幸福里小区3号楼2单元999室") == []


async def test_community_search_treats_wildcards_literally(client, people) -> None:
    assert await ids(client, people["headers"], address="%") == []
    assert await ids(client, people["headers"], address="_") == []


async def test_free_q_is_detected(client, people) -> None:
    for q, who in [("13900005678", "li"), ("139 0000 5678", "li"), ("１３９００００５６７８", "li"),
                   ("024-23416600", "zhang"), ("2100000003", "wang"), ("2103 3456 78", "zhang"), ("王强", "wang"),
                   ("和平区幸福里三栋二单元501", "zhang"), ("兴华小区", "wang")]:
        assert await ids(client, people["headers"], q=q) == [people[who]], q


@pytest.mark.parametrize(("q", "who"), [("+86 139 0000 5678", "li"), ("(024)23416600", "zhang")])
async def test_free_q_phone_with_country_code_or_brackets(client, people, q: str, who: str) -> None:
    assert await ids(client, people["headers"], q=q) == [people[who]]


async def test_search_without_criteria_is_a_json_error(client, people) -> None:
    response = await client.post("/api/v1/customers/search", headers=people["headers"], json={})
    assert response.status_code == 422
    body = response.json()
    assert body["error"]["code"] == "missing_query" and "查询条件" in body["error"]["message"]
    response = await client.post("/api/v1/customers/search", headers=people["headers"], json={"q": ""})
    assert response.status_code == 422 and response.json()["error"]["code"] == "missing_query"


async def test_search_invalid_input_is_a_json_error(client, people) -> None:
    for params in [{"phone": "1" * 21}, {"q": "x" * 121}, {"q": "张伟", "limit": "0"}, {"q": "张伟", "limit": "abc"},
                   {"name": "张" * 61}]:
        response = await client.post("/api/v1/customers/search", headers=people["headers"], json=params)
        assert response.status_code == 422, params
        error = response.json()["error"]
        assert error["code"] == "invalid_input" and error["message"].startswith("请求参数有误"), params


async def test_search_unknown_values_return_empty_list(client, people) -> None:
    for params in [{"phone": "13000000000"}, {"account_no": "99999999"}, {"name": "无名氏"}, {"phone": "abc"}]:
        assert await ids(client, people["headers"], **params) == []


async def test_search_limit(client, factory) -> None:
    for i in range(3):
        await factory.customer(name="重名", phones=[f"1350000000{i}"])
    headers = await factory.headers("agent")
    assert len(await ids(client, headers, name="重名")) == 3
    assert len(await ids(client, headers, name="重名", limit="2")) == 2


# ---------------------------------------------------------------- 360 and billing


async def test_customer_360_with_local_ledger(client, factory, session) -> None:
    card = make_id_card(701)
    customer = await factory.customer(name="周芳", phones=["13511112222"], id_card=card, account_no="2111112222",
                                      meter_type="IC卡表", has_heating=True, heating_area_m2="86.5",
                                      address={"district": "沈河区", "community": "五爱小区", "building": "7",
                                               "unit": "1", "room": "602"})
    account_id = customer.accounts[0].id
    paid = datetime(2026, 10, 8, 2, 30, tzinfo=UTC)
    session.add(BillingBalance(account_id=account_id, balance=Decimal("123.45"), arrears=Decimal("35.00"),
                               last_payment_at=paid, last_payment_amount=Decimal("200.00"), updated_at=paid))
    session.add(UsageRecord(account_id=account_id, period="2026-10", kind="gas", quantity=Decimal("21.00"),
                            amount=Decimal("55.23")))
    await session.commit()

    response = await client.get(f"/api/v1/customers/{customer.id}", headers=await factory.headers("dispatcher"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "周芳" and body["phones"] == ["13511112222"]
    assert body["id_card_masked"] == card[:6] + "********" + card[-4:] and card not in response.text
    assert [a["display"] for a in body["addresses"]] == ["沈河区五爱小区7号楼1单元602室"]
    [account] = body["accounts"]
    assert account["account_no"] == "2111112222" and account["meter_type"] == "ic_card"
    assert account["meter_type_label"] == "IC卡表" and account["status_label"] == "正常"
    assert account["has_heating"] is True and Decimal(str(account["heating_area_m2"])) == Decimal("86.5")
    assert account["address"] == "沈河区五爱小区7号楼1单元602室"
    [balance] = body["balances"]
    assert balance["account_no"] == "2111112222" and balance["error"] is None
    assert Decimal(balance["balance"]) == Decimal("123.45") and Decimal(balance["arrears"]) == Decimal("35.00")
    assert Decimal(balance["last_payment_amount"]) == Decimal("200")
    assert datetime.fromisoformat(balance["last_payment_at"]) == paid
    assert [(u["period"], u["kind"], Decimal(u["amount"])) for u in balance["usage"]] == \
        [("2026-10", "gas", Decimal("55.23"))]


async def test_customer_360_without_ledger_row_shows_zero(client, factory) -> None:
    customer = await factory.customer(account_no="2111113333")
    body = (await client.get(f"/api/v1/customers/{customer.id}", headers=await factory.headers())).json()
    assert [(b["account_no"], Decimal(b["balance"]), b["error"]) for b in body["balances"]] == \
        [("2111113333", Decimal("0"), None)]


async def test_customer_360_unknown_id_is_404(client, factory) -> None:
    response = await client.get("/api/v1/customers/999999", headers=await factory.headers())
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "customer_not_found", "message": "客户不存在"}}
    response = await client.get("/api/v1/customers/abc", headers=await factory.headers())
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"


def _billing(handler) -> HttpBillingSystem:
    return HttpBillingSystem("http://billing.example/api/", "s3cret", transport=httpx.MockTransport(handler))


async def test_http_billing_happy_path() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={
            "balance": 88.5, "arrears": "0", "last_payment_at": "2026-11-01T09:00:00+08:00",
            "last_payment_amount": 100, "usage": [{"period": "2026-10", "quantity": "20", "amount": "52.6"}],
        })

    system = _billing(handler)
    info = await system.summary("2103345678")
    await system.aclose()
    assert str(seen[0].url) == "http://billing.example/api/accounts/2103345678/summary"
    assert seen[0].headers["authorization"] == "Bearer s3cret"
    assert info.account_no == "2103345678"
    assert info.balance == Decimal("88.5") and info.arrears == Decimal("0")
    assert info.last_payment_at == datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
    assert info.last_payment_amount == Decimal("100")
    assert [(u.period, u.kind, u.quantity, u.amount) for u in info.usage] == \
        [("2026-10", "gas", Decimal("20"), Decimal("52.6"))]


async def test_http_billing_errors() -> None:
    not_found = _billing(lambda request: httpx.Response(404, json={"detail": "no"}))
    with pytest.raises(NotFound) as info:
        await not_found.summary("2103345678")
    assert info.value.code == "account_not_found"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    down = _billing(refuse)
    with pytest.raises(ServiceUnavailable) as info:
        await down.summary("2103345678")
    assert info.value.code == "billing_unavailable" and "计费系统暂时无法访问" in info.value.message

    broken = _billing(lambda request: httpx.Response(500))
    with pytest.raises(ServiceUnavailable, match="500"):
        await broken.summary("2103345678")


async def test_customer_360_degrades_per_account_when_billing_is_down(client, factory, monkeypatch) -> None:
    customer = await factory.customer(name="吴刚", account_no="2122223333")
    url = "http://billing.invalid"
    monkeypatch.setenv("GASDESK_BILLING_URL", url)
    reset_settings_cache()

    def handler(request: httpx.Request) -> httpx.Response:
        if "2122223333" in request.url.path:
            raise httpx.ConnectError("down", request=request)
        return httpx.Response(404)

    monkeypatch.setitem(billing._http_clients, url, HttpBillingSystem(url, transport=httpx.MockTransport(handler)))
    response = await client.get(f"/api/v1/customers/{customer.id}", headers=await factory.headers())
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "吴刚" and [a["account_no"] for a in body["accounts"]] == ["2122223333"]
    [balance] = body["balances"]
    assert balance["account_no"] == "2122223333" and balance["balance"] is None
    assert "计费系统暂时无法访问" in balance["error"]

    page = await client.get(f"/customers/{customer.id}", headers={**await factory.headers(), "Accept": "text/html"})
    assert page.status_code == 200 and "吴刚" in page.text and "计费系统暂时无法访问" in page.text


# ---------------------------------------------------------------- create / patch


async def test_create_customer_via_api(client, factory) -> None:
    headers = await factory.headers("agent")
    card = make_id_card(702)
    response = await client.post("/api/v1/customers", headers=headers, json={
        "name": " 陈 晨 ", "phones": ["+86 135 0000 1111", "13500001111", "024-23416601"], "id_card": card.lower(),
        "tags": ["老年人", " 老年人 "],
        "address": {"district": "浑南区", "community": "全运村", "building": "5栋", "unit": "1", "room": "1201"},
    })
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "陈 晨" and body["phones"] == ["13500001111", "02423416601"]
    assert body["tags"] == ["老年人"] and body["accounts"] == [] and body["balances"] == []
    assert body["addresses"][0]["display"] == "浑南区全运村5号楼1单元1201室"
    assert await ids(client, headers, phone="024 2341 6601") == [body["id"]]
    assert await ids(client, headers, q="浑南区全运村5-1-1201") == [body["id"]]


@pytest.mark.parametrize(("payload", "code", "text"), [
    ({"name": "甲", "phones": ["12345"]}, "invalid_phone", "电话号码格式不正确"),
    ({"name": "甲", "phones": []}, "invalid_input", "phones"),
    ({"name": "   ", "phones": ["13500002222"]}, "invalid_name", "姓名不能为空"),
    ({"name": "甲", "phones": ["13500002222"], "id_card": "110105194912310021"}, "invalid_id_card", "校验位"),
    ({"name": "甲", "phones": ["13500002222"], "tags": ["x" * 21]}, "invalid_tag", "标签过长"),
    ({"name": "甲", "phones": ["13500002222"], "address": {"district": " ", "community": "全运村"}},
     "invalid_address", "地址需要区和小区"),
    ({"phones": ["13500002222"]}, "invalid_input", "name"),
])
async def test_create_customer_validation_errors(client, factory, payload: dict, code: str, text: str) -> None:
    response = await client.post("/api/v1/customers", headers=await factory.headers("agent"), json=payload)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code
    assert text in response.json()["error"]["message"]
    counts = await table_counts(factory.session, "customers", "customer_phones", "addresses")
    assert counts == {"customers": 0, "customer_phones": 0, "addresses": 0}
    actions = await factory.session.scalars(select(AuditEntry.action))
    assert [a for a in actions if a.startswith("customer.")] == [], "nothing stored, nothing audited"


async def test_duplicate_id_card_is_409(client, factory) -> None:
    card = make_id_card(703)
    existing = await factory.customer(name="甲", id_card=card)
    headers = await factory.headers("agent")
    response = await client.post("/api/v1/customers", headers=headers,
                                 json={"name": "乙", "phones": ["13500003333"], "id_card": card})
    assert response.status_code == 409
    assert response.json()["error"] == {"code": "id_card_taken", "message": "该身份证号已登记在另一位客户名下"}
    other = await factory.customer(name="丙")
    response = await client.patch(f"/api/v1/customers/{other.id}", headers=headers, json={"id_card": card})
    assert response.status_code == 409 and response.json()["error"]["code"] == "id_card_taken"
    # setting one's own ID card again is fine
    response = await client.patch(f"/api/v1/customers/{existing.id}", headers=headers, json={"id_card": card})
    assert response.status_code == 200


async def test_patch_customer(client, factory) -> None:
    customer = await factory.customer(name="旧名", phones=["13500004444"], id_card=make_id_card(704))
    headers = await factory.headers("supervisor")
    response = await client.patch(f"/api/v1/customers/{customer.id}", headers=headers,
                                  json={"name": "新名", "phones": ["13500005555"], "tags": ["VIP"], "id_card": None})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["phones"], body["tags"], body["id_card_masked"]) == ("新名", ["13500005555"], ["VIP"], None)
    assert await ids(client, headers, phone="13500004444") == []
    assert await ids(client, headers, phone="13500005555") == [customer.id]
    assert await ids(client, headers, name="新名") == [customer.id]

    bad = await client.patch(f"/api/v1/customers/{customer.id}", headers=headers, json={"phones": ["555"]})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_phone"
    assert "555" in bad.json()["error"]["message"]
    assert (await client.get(f"/api/v1/customers/{customer.id}", headers=headers)).json()["phones"] == ["13500005555"]
    missing = await client.patch("/api/v1/customers/999999", headers=headers, json={"name": "x"})
    assert missing.status_code == 404


async def test_open_account_and_add_address(client, factory) -> None:
    customer = await factory.customer(name="开户", account_no="2133334444")
    admin = await factory.headers("admin")
    address = await client.post(f"/api/v1/customers/{customer.id}/addresses", headers=admin, json={
        "district": "皇姑区", "community": "塔湾小区", "building": "二栋", "unit": "3", "room": "0402"})
    assert address.status_code == 201 and address.json()["display"] == "皇姑区塔湾小区2号楼3单元402室"
    same = await client.post(f"/api/v1/customers/{customer.id}/addresses", headers=admin, json={
        "district": "皇姑区", "community": "塔湾", "building": "2", "unit": "3", "room": "402室"})
    assert same.json()["id"] == address.json()["id"], "the same home typed differently is kept once"
    opened = await client.post(f"/api/v1/customers/{customer.id}/accounts", headers=admin, json={
        "account_no": "2133335555", "address_id": address.json()["id"], "meter_type": "物联网智能表",
        "account_type": "非居民"})
    assert opened.status_code == 201, opened.text
    assert opened.json()["meter_type"] == "smart" and opened.json()["account_type"] == "commercial"
    dup = await client.post(f"/api/v1/customers/{customer.id}/accounts", headers=admin, json={"account_no": "2133334444"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "account_no_taken"
    bad = await client.post(f"/api/v1/customers/{customer.id}/accounts", headers=admin,
                            json={"account_no": "2133336666", "meter_type": "燃气表"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_meter_type"
    none = await client.post(f"/api/v1/customers/{customer.id}/accounts", headers=admin,
                             json={"account_no": "2133337777", "has_gas": False})
    assert none.status_code == 422 and none.json()["error"]["code"] == "invalid_services"
    agent = await client.post(f"/api/v1/customers/{customer.id}/accounts", headers=await factory.headers("agent"),
                              json={"account_no": "2133338888"})
    assert agent.status_code == 403
    assert await ids(client, admin, account_no="2133335555") == [customer.id]
