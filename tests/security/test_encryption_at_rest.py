"""Personal data is never stored in plaintext; blind indexes still find it; the key matters."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select, text

from gasdesk import db
from gasdesk.audit.service import Actor
from gasdesk.config import get_settings, reset_settings_cache
from gasdesk.customers.importer import import_customers
from gasdesk.customers.lookup_keys import account_no_key, id_card_key, phone_key
from gasdesk.customers.models import Account, Customer, CustomerPhone
from gasdesk.security.crypto import blind_index, decrypt_text, encrypt_text
from tests.factories import make_id_card, raw_table_dump, write_csv

OTHER_KEY = base64.urlsafe_b64encode(b"another-32-byte-key-for-testing!").decode()



async def test_no_plaintext_personal_data_in_any_table(client, factory, tmp_path: Path) -> None:
    headers = await factory.headers("agent")
    api_card = make_id_card(501)
    response = await client.post("/api/v1/customers", headers=headers, json={
        "name": "欧阳明月", "phones": ["13912345678", "024-23410099"], "id_card": api_card, "tags": ["独居"],
        "address": {"district": "和平区", "community": "幸福里小区", "building": "17号楼", "unit": "4单元",
                    "room": "1502室"},
    })
    assert response.status_code == 201, response.text
    customer_id = response.json()["id"]
    patch = await client.patch(f"/api/v1/customers/{customer_id}", headers=headers, json={"name": "欧阳明日"})
    assert patch.status_code == 200
    admin = await factory.headers("admin")
    account = await client.post(f"/api/v1/customers/{customer_id}/accounts", headers=admin,
                                json={"account_no": "2187654321", "meter_serial": "M1"})
    assert account.status_code == 201, account.text

    import_card = make_id_card(502)
    csv_path = write_csv(tmp_path / "c.csv", ["户号", "姓名", "电话", "身份证号", "区", "小区", "楼栋", "单元", "室"], [
        ["2176543210", "司马长风", "13787654321", import_card, "铁西区", "兴华小区", "23栋", "6", "2208室"]])
    report = await import_customers(csv_path, Actor.system("test"))
    assert report.created_customers == 1
    # an import update writes before/after snapshots into the audit log too
    write_csv(csv_path, ["户号", "姓名", "电话", "身份证号", "区", "小区", "楼栋", "单元", "室"], [
        ["2176543210", "司马长空", "13787654321", import_card, "铁西区", "兴华小区", "23栋", "6", "2208室"]])
    assert (await import_customers(csv_path, Actor.system("test"))).updated_customers == 1

    dump = await raw_table_dump()
    assert "和平区" in dump and "兴华小区" in dump, "area-level fields stay plain (sanity check of the scan)"
    secrets = ["欧阳明月", "欧阳明日", "13912345678", "02423410099", "024-23410099", api_card, "2187654321",
               "17号楼", "4单元", "1502室", "司马长风", "司马长空", "13787654321", import_card, "2176543210",
               "23栋", "2208室"]
    leaked = [s for s in secrets if s in dump]
    assert leaked == []

    # audit rows exist for all of this, and hold the snapshots encrypted
    async with db.get_engine().connect() as conn:
        rows = list(await conn.execute(text("SELECT action, changes FROM audit_entries")))
    actions = {r[0] for r in rows}
    assert {"customer.create", "customer.update", "account.create", "customer.import_create",
            "account.import_create", "customer.import_update"} <= actions
    assert all(r[1] is None or r[1].startswith("v1:") for r in rows)


async def test_blind_index_allows_lookup(factory, session) -> None:
    card = make_id_card(503)
    customer = await factory.customer(name="林黛玉", phones=["13611112222"], id_card=card, account_no="2199990000")
    raw = (await session.execute(text("SELECT phone, phone_index FROM customer_phones WHERE customer_id = :c"),
                                 {"c": customer.id})).one()
    assert raw.phone.startswith("v1:") and "13611112222" not in raw.phone
    assert raw.phone_index == phone_key("13611112222") == blind_index("13611112222", kind="phone")
    assert len(raw.phone_index) == 64 and int(raw.phone_index, 16) >= 0
    assert await session.scalar(select(CustomerPhone.customer_id).where(
        CustomerPhone.phone_index == phone_key("13611112222"))) == customer.id
    assert await session.scalar(select(Account.customer_id).where(
        Account.account_no_index == account_no_key("2199990000"))) == customer.id
    assert await session.scalar(select(Customer.id).where(Customer.id_card_index == id_card_key(card))) == customer.id
    # kinds are separated: the same digits as a phone and as a 户号 have different indexes
    assert blind_index("2199990000", kind="phone") != blind_index("2199990000", kind="account_no")


async def test_same_value_encrypts_differently_each_time(factory, session) -> None:
    first = encrypt_text("13800001234")
    second = encrypt_text("13800001234")
    assert first != second and first.startswith("v1:")
    assert decrypt_text(first) == decrypt_text(second) == "13800001234"
    a = await factory.customer(name="同名", phones=["13500000001"])
    b = await factory.customer(name="同名", phones=["13500000002"])
    names = (await session.execute(text("SELECT name, name_index FROM customers WHERE id IN (:a, :b)"),
                                   {"a": a.id, "b": b.id})).all()
    assert names[0].name != names[1].name, "random nonce: equal names give different ciphertexts"
    assert names[0].name_index == names[1].name_index, "but the blind index is deterministic"


async def test_a_different_data_key_cannot_decrypt(factory, monkeypatch: pytest.MonkeyPatch) -> None:
    customer = await factory.customer(name="薛宝钗", phones=["13622223333"])
    our_key = get_settings().data_key
    token = encrypt_text("薛宝钗")
    index = phone_key("13622223333")

    monkeypatch.setenv("GASDESK_DATA_KEY", OTHER_KEY)
    reset_settings_cache()
    with pytest.raises(InvalidTag):
        decrypt_text(token)
    assert phone_key("13622223333") != index, "the blind index is keyed too"
    await db.dispose_engine()
    async with db.sessionmaker()() as s:
        with pytest.raises(InvalidTag):
            await s.scalar(select(Customer.name).where(Customer.id == customer.id))

    monkeypatch.setenv("GASDESK_DATA_KEY", our_key)
    reset_settings_cache()
    assert decrypt_text(token) == "薛宝钗"


def test_decrypt_refuses_values_that_are_not_ciphertexts() -> None:
    with pytest.raises(ValueError):
        decrypt_text("13800001234")
    tampered = encrypt_text("hello")
    flipped = tampered[:-2] + ("A" if tampered[-2] != "A" else "B") + tampered[-1]
    with pytest.raises(InvalidTag):
        decrypt_text(flipped)
