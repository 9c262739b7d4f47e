"""Bulk import from CSV: validation per row, error CSV, idempotent re-runs, encodings, header aliases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.customers.importer import ImportFileError, import_customers
from gasdesk.customers.models import Account, Customer
from gasdesk.customers.service import CustomerQuery, access_customer, find_customers
from gasdesk.db import sessionmaker
from tests.factories import bad_checksum, make_id_card, read_csv, table_counts, write_csv

ACTOR = Actor.system("test-import", "cli")
HEADER = ["户号", "姓名", "电话", "身份证号", "区", "小区", "楼栋", "单元", "室", "业务", "表类型", "标签"]
ENGLISH_HEADER = ["account_no", "name", "phone", "id_card", "district", "community", "building", "unit", "room",
                  "services", "meter_type", "tags"]
TABLES = ("customers", "accounts", "customer_phones", "addresses")


def good_rows() -> list[list[str]]:
    return [
        ["2100000001", "张伟", "13800001234", make_id_card(1), "和平区", "幸福里小区", "3", "2", "501", "燃气+热力",
         "IC卡表", "老年人"],
        ["2100000002", "李娜", "139-0000-5678", "", "铁西区", "兴华小区", "12", "1", "1201", "燃气", "物联网智能表", ""],
        ["2100000003", "王强", "024-23416600；13700007777", make_id_card(3), "沈河区", "五爱小区", "5", "3", "302",
         "热力", "机械表", "VIP"],
    ]


async def counts() -> dict[str, int]:
    async with sessionmaker()() as s:
        return await table_counts(s, *TABLES)


async def search(**kw: str) -> list[Customer]:
    async with sessionmaker()() as s:
        return await find_customers(s, CustomerQuery(**kw))


async def test_good_rows_are_imported_and_searchable(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "customers.csv", HEADER, good_rows())
    report = await import_customers(path, ACTOR)
    assert (report.total, report.created_customers, report.created_accounts, report.rejected) == (3, 3, 3, 0)
    assert report.error_file is None
    assert not (tmp_path / "customers.errors.csv").exists()
    assert await counts() == {"customers": 3, "accounts": 3, "customer_phones": 4, "addresses": 3}

    [by_phone] = await search(phone="13900005678")
    assert by_phone.name == "李娜"
    assert [a.account_no for a in by_phone.accounts] == ["2100000002"]
    assert by_phone.accounts[0].meter_type == "smart"
    [by_account] = await search(account_no="2100000001")
    assert by_account.name == "张伟" and by_account.tags == ["老年人"]
    account = by_account.accounts[0]
    assert (account.has_gas, account.has_heating, account.meter_type) == (True, True, "ic_card")
    [by_landline] = await search(phone="024 2341 6600")
    assert by_landline.name == "王强"
    assert sorted(p.phone for p in by_landline.phones) == ["02423416600", "13700007777"]
    assert by_landline.accounts[0].has_gas is False and by_landline.accounts[0].has_heating is True
    [by_address] = await search(address="沈河区五爱小区五号楼三单元302室")
    assert by_address.id == by_landline.id
    [by_name] = await search(name="张伟")
    assert by_name.id == by_account.id


async def test_bad_rows_are_rejected_with_reasons_good_rows_kept(tmp_path: Path) -> None:
    bad_card = bad_checksum(make_id_card(9))
    rows = [
        *good_rows(),
        ["2100000010", "赵敏", "12345", "", "和平区", "幸福里小区", "1", "1", "101", "", "", ""],  # bad phone
        ["21000X0011", "钱进", "13800002222", "", "和平区", "幸福里小区", "1", "1", "102", "", "", ""],  # bad 户号
        ["2100000012", "", "13800003333", "", "和平区", "幸福里小区", "1", "1", "103", "", "", ""],  # missing name
        ["2100000013", "孙丽", "13800004444", bad_card, "和平区", "幸福里小区", "1", "1", "104", "", "", ""],
        ["2100000014", "周杰", "13800005555", "", "和平区", "幸福里小区", "1", "1", "105", "", "燃气表", ""],
        ["2100000001", "吴用", "13800006666", "", "和平区", "幸福里小区", "1", "1", "106", "", "", ""],  # dup 户号
    ]
    path = write_csv(tmp_path / "mixed.csv", HEADER, rows)
    report = await import_customers(path, ACTOR)
    assert (report.total, report.created_customers, report.rejected) == (9, 3, 6)
    assert report.error_file == tmp_path / "mixed.errors.csv"
    assert await counts() == {"customers": 3, "accounts": 3, "customer_phones": 4, "addresses": 3}

    errors = read_csv(report.error_file)
    assert errors[0] == ["行号", *HEADER, "错误原因"]
    by_line = {int(r[0]): r for r in errors[1:]}
    assert sorted(by_line) == [5, 6, 7, 8, 9, 10]
    for line, row in by_line.items():
        assert row[1:-1] == rows[line - 2], "the original columns are copied unchanged"
    reasons = {line: row[-1] for line, row in by_line.items()}
    assert "电话号码格式不正确" in reasons[5] and "12345" in reasons[5]
    assert "户号格式不正确" in reasons[6]
    assert "姓名不能为空" in reasons[7]
    assert "身份证号校验位不正确" in reasons[8]
    assert "meter_type" in reasons[9] and "燃气表" in reasons[9] and "IC卡表" in reasons[9]
    assert "第 2 行已出现" in reasons[10]
    assert [line for line, _ in report.errors] == [5, 6, 7, 8, 9, 10]

    # the first occurrence of the duplicated 户号 won; nothing of the rejected rows was stored
    [owner] = await search(account_no="2100000001")
    assert owner.name == "张伟"
    for phone in ["13800002222", "13800003333", "13800004444", "13800005555", "13800006666"]:
        assert await search(phone=phone) == []


async def test_row_with_several_problems_lists_all_of_them(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "multi.csv", HEADER, [
        ["123", "", "999", bad_checksum(make_id_card(2)), "和平区", "幸福里小区", "", "", "", "", "", ""]])
    report = await import_customers(path, ACTOR)
    assert report.rejected == 1
    reason = read_csv(report.error_file)[1][-1]
    for part in ["姓名不能为空", "户号格式不正确", "电话号码格式不正确", "身份证号校验位不正确"]:
        assert part in reason


async def test_reimport_same_file_is_idempotent(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "customers.csv", HEADER, good_rows())
    await import_customers(path, ACTOR)
    first = await counts()
    async with sessionmaker()() as s:
        audit_before = len(list(await s.scalars(select(AuditEntry.id))))

    again = await import_customers(path, ACTOR)
    assert (again.created_customers, again.created_accounts, again.updated_customers, again.updated_accounts) == (0,) * 4
    assert again.unchanged == 3 and again.rejected == 0
    assert await counts() == first
    async with sessionmaker()() as s:
        assert len(list(await s.scalars(select(AuditEntry.id)))) == audit_before, "no audit noise for no change"
    assert len(await search(phone="13800001234")) == 1


async def test_changed_row_updates_in_place_with_audit(tmp_path: Path) -> None:
    rows = good_rows()
    await import_customers(write_csv(tmp_path / "v1.csv", HEADER, rows), ACTOR)
    [before] = await search(account_no="2100000002")
    first = await counts()

    rows[1][1] = "李娜娜"  # name corrected
    rows[1][10] = "IC卡表"  # meter replaced
    report = await import_customers(write_csv(tmp_path / "v2.csv", HEADER, rows), ACTOR)
    assert (report.updated_customers, report.updated_accounts, report.created_customers, report.created_accounts) \
        == (1, 1, 0, 0)
    assert report.unchanged == 2
    assert await counts() == first

    [after] = await search(account_no="2100000002")
    assert after.id == before.id and after.accounts[0].id == before.accounts[0].id
    assert after.name == "李娜娜" and after.accounts[0].meter_type == "ic_card"
    assert await search(name="李娜") == []

    async with sessionmaker()() as s:
        customer_audit = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "customer.import_update"))).one()
        account_audit = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "account.import_update"))).one()
    assert customer_audit.entity_type == "customer" and customer_audit.entity_id == str(after.id)
    assert customer_audit.changes == {"before": {"name": "李娜"}, "after": {"name": "李娜娜"}}
    assert customer_audit.actor_name == "test-import" and customer_audit.source == "cli"
    assert account_audit.entity_type == "account" and account_audit.entity_id == str(after.accounts[0].id)
    assert account_audit.changes == {"before": {"meter_type": "smart"}, "after": {"meter_type": "ic_card"}}


async def test_gbk_file_imports_identically_to_utf8(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "gbk.csv", HEADER, good_rows(), encoding="gbk")
    assert "张伟".encode("gbk") in path.read_bytes()
    report = await import_customers(path, ACTOR)
    assert (report.created_customers, report.rejected) == (3, 0)
    [customer] = await search(account_no="2100000003")
    assert customer.name == "王强" and customer.tags == ["VIP"]
    assert customer.addresses[0].community == "五爱小区" and customer.addresses[0].district == "沈河区"
    # the same content as UTF-8 (with BOM, as Excel writes it) changes nothing
    utf8 = write_csv(tmp_path / "utf8.csv", HEADER, good_rows(), encoding="utf-8-sig")
    again = await import_customers(utf8, ACTOR)
    assert (again.created_customers, again.updated_customers, again.updated_accounts, again.unchanged) == (0, 0, 0, 3)


async def test_english_headers_and_other_chinese_aliases(tmp_path: Path) -> None:
    english = write_csv(tmp_path / "en.csv", ENGLISH_HEADER, good_rows()[:1])
    report = await import_customers(english, ACTOR)
    assert (report.created_customers, report.rejected) == (1, 0)
    aliases = ["账户号", "客户姓名", "联系电话", "证件号码", "行政区", "社区", "楼号", "单元", "房号", "业务类型",
               "表具类型", "标签"]
    other = write_csv(tmp_path / "alias.csv", aliases, good_rows()[1:2])
    report = await import_customers(other, ACTOR)
    assert (report.created_customers, report.rejected) == (1, 0)
    [customer] = await search(phone="13900005678")
    assert customer.accounts[0].account_no == "2100000002"
    assert customer.addresses[0].room == "1201"


async def test_missing_required_column_fails_and_stores_nothing(tmp_path: Path) -> None:
    header = [h for h in HEADER if h != "电话"]
    rows = [[v for h, v in zip(HEADER, row, strict=True) if h != "电话"] for row in good_rows()]
    path = write_csv(tmp_path / "nophone.csv", header, rows)
    with pytest.raises(ImportFileError) as info:
        await import_customers(path, ACTOR)
    assert "缺少必需的列" in info.value.message and "电话" in info.value.message
    assert await counts() == dict.fromkeys(TABLES, 0)


async def test_nonexistent_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="文件不存在"):
        await import_customers(tmp_path / "nope.csv", ACTOR)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ImportFileError, match="空的"):
        await import_customers(empty, ACTOR)


async def test_same_id_card_in_two_rows_is_one_customer_with_two_accounts(tmp_path: Path) -> None:
    card = make_id_card(77)
    rows = [
        ["2100000101", "刘洋", "13600001111", card, "和平区", "幸福里小区", "3", "2", "501", "燃气", "IC卡表", ""],
        ["2100000102", "刘洋", "13600002222", card, "浑南区", "全运村", "8", "1", "801", "热力", "", ""],
    ]
    report = await import_customers(write_csv(tmp_path / "two.csv", HEADER, rows), ACTOR)
    assert (report.created_customers, report.created_accounts, report.rejected) == (1, 2, 0)
    [customer] = await search(account_no="2100000101")
    assert sorted(a.account_no for a in customer.accounts) == ["2100000101", "2100000102"]
    assert sorted(p.phone for p in customer.phones) == ["13600001111", "13600002222"]
    assert len(customer.addresses) == 2
    by_account = {a.account_no: a for a in customer.accounts}
    assert by_account["2100000102"].address.community == "全运村"
    assert [c.id for c in await search(phone="13600002222")] == [customer.id]

    # the same ID card in a later file attaches to that customer too
    more = [["2100000103", "刘洋", "13600001111", card, "铁西区", "兴华小区", "1", "1", "101", "燃气", "", ""]]
    report = await import_customers(write_csv(tmp_path / "more.csv", HEADER, more), ACTOR)
    assert (report.created_customers, report.created_accounts) == (0, 1)
    async with sessionmaker()() as s:
        assert len((await access_customer(s, customer.id)).accounts) == 3
        assert await table_counts(s, "customers") == {"customers": 1}


async def test_rows_sharing_a_new_customer_all_contribute_tags(tmp_path: Path) -> None:
    card = make_id_card(78)
    rows = [
        ["2100000201", "刘洋", "13600003333", card, "和平区", "幸福里小区", "3", "2", "501", "燃气", "", "老年人"],
        ["2100000202", "刘洋", "13600004444", card, "浑南区", "全运村", "8", "1", "801", "燃气", "", "独居"],
    ]
    path = write_csv(tmp_path / "tags.csv", HEADER, rows)
    await import_customers(path, ACTOR)
    [customer] = await search(account_no="2100000201")
    assert sorted(customer.tags) == ["独居", "老年人"]
    again = await import_customers(path, ACTOR)
    assert again.updated_customers == 0


async def test_phone_written_with_spaces_is_one_phone(tmp_path: Path) -> None:
    rows = [["2100000401", "郑爽", "139 0000 8888", "", "和平区", "幸福里小区", "1", "1", "101", "", "", ""],
            ["2100000402", "冯巩", "+86 138 0000 9999", "", "和平区", "幸福里小区", "1", "1", "102", "", "", ""]]
    report = await import_customers(write_csv(tmp_path / "spaces.csv", HEADER, rows), ACTOR)
    assert report.rejected == 0, report.errors
    assert [p.phone for p in (await search(account_no="2100000401"))[0].phones] == ["13900008888"]


async def test_several_phones_in_one_cell(tmp_path: Path) -> None:
    rows = [["2100000501", "韩梅", "13500001111,13500002222/024-23416600、13500001111", "", "和平区", "幸福里小区",
             "1", "1", "101", "", "", ""]]
    report = await import_customers(write_csv(tmp_path / "phones.csv", HEADER, rows), ACTOR)
    assert report.rejected == 0
    [customer] = await search(phone="13500002222")
    assert [p.phone for p in customer.phones] == ["13500001111", "13500002222", "02423416600"]
    assert [p.is_primary for p in customer.phones] == [True, False, False]


async def test_account_conflicting_with_another_owners_id_card_is_rejected(tmp_path: Path) -> None:
    card_a, card_b = make_id_card(80), make_id_card(81)
    rows = [
        ["2100000301", "甲", "13600005555", card_a, "和平区", "幸福里小区", "1", "1", "101", "", "", ""],
        ["2100000302", "乙", "13600006666", card_b, "和平区", "幸福里小区", "1", "1", "102", "", "", ""],
    ]
    await import_customers(write_csv(tmp_path / "a.csv", HEADER, rows), ACTOR)
    clash = [["2100000301", "甲", "13600005555", card_b, "和平区", "幸福里小区", "1", "1", "101", "", "", ""]]
    report = await import_customers(write_csv(tmp_path / "b.csv", HEADER, clash), ACTOR)
    assert report.rejected == 1 and "另一位客户" in report.errors[0][1]
    async with sessionmaker()() as s:
        owner = await s.scalar(select(Account.customer_id).where(Account.id.is_not(None)).order_by(Account.id).limit(1))
        customer = await access_customer(s, owner)
    assert customer.id_card == card_a


async def test_stale_error_file_is_removed_after_clean_run(tmp_path: Path) -> None:
    rows = good_rows()
    rows[0][2] = "12345"
    path = write_csv(tmp_path / "c.csv", HEADER, rows)
    report = await import_customers(path, ACTOR)
    assert report.error_file is not None and report.error_file.exists()
    rows[0][2] = "13800001234"
    write_csv(path, HEADER, rows)
    report = await import_customers(path, ACTOR)
    assert report.rejected == 0 and report.error_file is None
    assert not (tmp_path / "c.errors.csv").exists()


async def test_small_batches_give_the_same_result(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "batch.csv", HEADER, good_rows())
    report = await import_customers(path, ACTOR, batch_size=1)
    assert (report.created_customers, report.created_accounts) == (3, 3)
    assert await counts() == {"customers": 3, "accounts": 3, "customer_phones": 4, "addresses": 3}
