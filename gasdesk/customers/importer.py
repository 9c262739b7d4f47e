"""Bulk import of customers and accounts from CSV (UTF-8 or GBK).

Each row is validated on its own; valid rows are written in one transaction per
batch, rejected rows go to an error CSV with the reason. Re-running the same file
updates in place: an account is identified by its 户号, a customer by its ID number
or by the account it already owns, so nothing is duplicated.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import Any, TypedDict

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit_bulk
from gasdesk.customers.addresses import AddressParts
from gasdesk.customers.lookup_keys import account_no_key, address_key, id_card_key, name_key, phone_key
from gasdesk.customers.models import (
    ACCOUNT_STATUS_LABELS,
    ACCOUNT_TYPE_LABELS,
    METER_TYPE_LABELS,
    Account,
    AccountStatus,
    AccountType,
    Address,
    Customer,
    CustomerPhone,
    MeterType,
)
from gasdesk.customers.service import check_enum, check_tags
from gasdesk.customers.validation import (
    check_account_no,
    check_id_card,
    check_name,
    check_phone,
    to_halfwidth,
)
from gasdesk.db import Base, commit, rollback, sessionmaker, table_of
from gasdesk.errors import GasdeskError, InvalidInput

HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "account_no": ("户号", "账户号", "用户号", "account_no"),
    "name": ("姓名", "户主", "客户名称", "客户姓名", "name"),
    "phone": ("电话", "手机", "手机号", "联系电话", "phone", "phones"),
    "id_card": ("身份证号", "证件号码", "身份证", "id_card"),
    "district": ("区", "区县", "行政区", "district"),
    "street": ("街道", "street"),
    "community": ("小区", "社区", "community"),
    "building": ("楼栋", "楼号", "栋", "building"),
    "unit": ("单元", "unit"),
    "room": ("室", "房号", "门牌号", "room"),
    "account_type": ("用户类型", "户类型", "account_type"),
    "services": ("业务", "业务类型", "services"),
    "meter_type": ("表类型", "表具类型", "meter_type"),
    "meter_serial": ("表号", "表具编号", "meter_serial"),
    "status": ("状态", "账户状态", "status"),
    "tags": ("标签", "tags"),
    "heating_area_m2": ("采暖面积", "供暖面积", "heating_area_m2"),
}
REQUIRED = ("account_no", "name", "phone", "district", "community")
FIELD_LABELS = {key: aliases[0] for key, aliases in HEADER_ALIASES.items()}
LIST_SPLIT = str.maketrans({"；": ";", "，": ";", ",": ";", "/": ";", "、": ";", "|": ";", " ": ";"})
# Phones are written with spaces inside ("139 0000 5678"), so spaces do not separate phones.
PHONE_SPLIT = str.maketrans({"；": ";", "，": ";", ",": ";", "/": ";", "、": ";", "|": ";"})


class _CustomerState(TypedDict):
    """What an import may change on a stored customer (also the audit row's before/after)."""

    name: str
    id_card: str | None
    tags: list[str]


@dataclass
class ImportRow:
    line: int
    raw: dict[str, str]
    account_no: str
    name: str
    phones: list[str]
    id_card: str | None
    address: AddressParts
    account_type: str
    has_gas: bool
    has_heating: bool
    status: str
    meter_type: str | None
    meter_serial: str | None
    tags: list[str]
    heating_area_m2: Decimal | None

    @property
    def account_key(self) -> str:
        return account_no_key(self.account_no)


@dataclass
class ImportReport:
    total: int = 0
    created_customers: int = 0
    updated_customers: int = 0
    created_accounts: int = 0
    updated_accounts: int = 0
    unchanged: int = 0
    rejected: int = 0
    error_file: Path | None = None
    seconds: float = 0.0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.total - self.rejected


class ImportFileError(InvalidInput):
    code = "import_file_invalid"


def decode_file(data: bytes) -> str:
    """UTF-8 (with or without BOM) first, then GB18030 (a superset of GBK, as Excel on Chinese Windows saves)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise ImportFileError("无法识别文件编码：请使用 UTF-8 或 GBK 编码的 CSV") from exc


def _map_header(header: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for column in header:
        key = column.strip().lower()
        for field_name, aliases in HEADER_ALIASES.items():
            if key in (a.lower() for a in aliases) and field_name not in mapping.values():
                mapping[column] = field_name
                break
    missing = [FIELD_LABELS[f] for f in REQUIRED if f not in mapping.values()]
    if missing:
        raise ImportFileError(f"CSV 缺少必需的列: {'、'.join(missing)}（表头示例: 户号,姓名,电话,区,小区,楼栋,单元,室）")
    return mapping


def read_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, str], dict[str, str]]], int]:
    """(original header, iterator of (line number, original row, row by field name), row count)."""
    if not path.exists():
        raise ImportFileError(f"文件不存在: {path}")
    text = decode_file(path.read_bytes())
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError("CSV 文件是空的") from None
    mapping = _map_header(header)
    rows = list(reader)

    def iterate() -> Iterator[tuple[int, dict[str, str], dict[str, str]]]:
        for offset, values in enumerate(rows):
            if not any(v.strip() for v in values):
                continue
            original = dict(zip(header, values, strict=False))
            mapped = {mapping[c]: (v or "").strip() for c, v in original.items() if c in mapping}
            yield offset + 2, original, mapped

    return header, iterate(), len(rows)


def _services(value: str) -> tuple[bool, bool]:
    if not value:
        return True, False
    parts = {p for p in to_halfwidth(value).replace("+", ";").translate(LIST_SPLIT).split(";") if p}
    gas = bool(parts & {"燃气", "天然气", "gas"})
    heating = bool(parts & {"热力", "供暖", "采暖", "供热", "heating"})
    if not gas and not heating:
        raise InvalidInput(f"业务取值无效: {value!r}（燃气、热力或 燃气+热力）")
    return gas, heating


def check_row(line: int, original: dict[str, str], row: dict[str, str]) -> ImportRow:
    """Validate one CSV row completely; raise InvalidInput listing every problem."""
    problems: list[str] = []

    def attempt(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except GasdeskError as exc:
            problems.append(exc.message)
            return None

    for required in REQUIRED:
        if not row.get(required):
            problems.append(f"{FIELD_LABELS[required]}不能为空")
    account_no = attempt(lambda: check_account_no(row["account_no"])) if row.get("account_no") else None
    name = attempt(lambda: check_name(row["name"])) if row.get("name") else None
    phones: list[str] = []
    for raw_phone in row.get("phone", "").translate(PHONE_SPLIT).split(";"):
        if raw_phone.strip():
            phone = attempt(partial(check_phone, raw_phone))
            if phone and phone not in phones:
                phones.append(phone)
    id_card = attempt(lambda: check_id_card(row["id_card"])) if row.get("id_card") else None
    account_type = attempt(lambda: check_enum(row.get("account_type") or "residential", AccountType,
                                              ACCOUNT_TYPE_LABELS, "account_type"))
    status = attempt(lambda: check_enum(row.get("status") or "active", AccountStatus, ACCOUNT_STATUS_LABELS, "status"))
    meter_type = attempt(lambda: check_enum(row.get("meter_type"), MeterType, METER_TYPE_LABELS, "meter_type"))
    services = attempt(lambda: _services(row.get("services", "")))
    tags = attempt(lambda: check_tags(row.get("tags", "").translate(LIST_SPLIT).split(";"))) or []
    area = None
    if row.get("heating_area_m2"):
        try:
            area = Decimal(row["heating_area_m2"])
            if area < 0 or area > 100000:
                raise InvalidOperation
        except InvalidOperation:
            problems.append(f"采暖面积无效: {row['heating_area_m2']!r}")
    if problems:
        raise InvalidInput("；".join(dict.fromkeys(problems)))
    assert account_no and name and services is not None and account_type and status
    return ImportRow(
        line=line, raw=original, account_no=account_no, name=name, phones=phones, id_card=id_card,
        address=AddressParts(
            district=to_halfwidth(row["district"]), community=to_halfwidth(row["community"]),
            building=row.get("building", ""), unit=row.get("unit", ""), room=row.get("room", ""),
            street=to_halfwidth(row.get("street", "")),
        ),
        account_type=account_type, has_gas=services[0], has_heating=services[1], status=status,
        meter_type=meter_type, meter_serial=row.get("meter_serial") or None, tags=tags, heating_area_m2=area,
    )


async def _insert_returning_ids(session: AsyncSession, model: type[Base], rows: list[dict[str, Any]],
                                key_columns: tuple[str, ...]) -> list[int]:
    """Bulk insert and return the new ids aligned with ``rows``.

    RETURNING without ``sort_by_parameter_order`` is ~10x faster here, but its row order is not
    guaranteed; rows are matched back by ``key_columns`` instead. Rows with equal keys hold equal
    data, so which of them gets which id makes no difference.
    """
    table = table_of(model)
    result = await session.execute(insert(table).returning(table.c.id, *(table.c[k] for k in key_columns)), rows)
    pool: dict[tuple[Any, ...], list[int]] = {}
    for record in result:
        pool.setdefault(tuple(_hashable(v) for v in record[1:]), []).append(record[0])
    return [pool[tuple(_hashable(row[k]) for k in key_columns)].pop() for row in rows]


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class _BatchWriter:
    """Writes one batch of valid rows: look up what exists, then bulk insert/update and audit."""

    def __init__(self, session: AsyncSession, actor: Actor, report: ImportReport) -> None:
        self.session = session
        self.actor = actor
        self.report = report
        self.audit: list[dict[str, Any]] = []

    async def write(self, rows: list[ImportRow]) -> list[tuple[ImportRow, str]]:
        """Returns rows rejected for conflicts with stored data."""
        s = self.session
        rejected: list[tuple[ImportRow, str]] = []
        accounts = {
            a.account_no_index: a
            for a in await s.scalars(select(Account).where(Account.account_no_index.in_([r.account_key for r in rows])))
        }
        id_keys = [id_card_key(r.id_card) for r in rows if r.id_card]
        by_id_card = {
            c.id_card_index: c.id for c in await s.execute(
                select(Customer.id, Customer.id_card_index).where(Customer.id_card_index.in_(id_keys))
            )
        } if id_keys else {}

        # 1. Decide the customer of each row: owner of the existing account, else the ID-card match, else new.
        new_customer_rows: dict[str, list[ImportRow]] = {}  # grouping key -> rows sharing one new customer
        row_customer: dict[int, int | str] = {}
        for row in rows:
            account = accounts.get(row.account_key)
            id_owner = by_id_card.get(id_card_key(row.id_card)) if row.id_card else None
            if account is not None:
                if id_owner is not None and id_owner != account.customer_id:
                    rejected.append((row, "身份证号已登记在另一位客户名下，与该户号的户主不一致"))
                    continue
                row_customer[row.line] = account.customer_id
            elif id_owner is not None:
                row_customer[row.line] = id_owner
            else:
                group = f"id:{row.id_card}" if row.id_card else f"line:{row.line}"
                new_customer_rows.setdefault(group, []).append(row)
                row_customer[row.line] = group
        rows = [r for r in rows if r.line in row_customer]

        # 2. Insert new customers.
        groups = list(new_customer_rows)
        if groups:
            new_customers: list[dict[str, Any]] = []
            for group in groups:
                members = new_customer_rows[group]
                # Same merge rule as for stored customers below: last name wins, tags accumulate.
                name = members[-1].name
                tags = list(dict.fromkeys(t for r in members for t in r.tags))
                new_customers.append({
                    "name": name, "name_index": name_key(name), "id_card": members[0].id_card,
                    "id_card_index": id_card_key(members[0].id_card) if members[0].id_card else None, "tags": tags,
                })
            ids = await _insert_returning_ids(s, Customer, new_customers,
                                              ("name", "name_index", "id_card_index", "tags"))
            group_id = dict(zip(groups, ids, strict=True))
            for group, cid, value in zip(groups, ids, new_customers, strict=True):
                self.report.created_customers += 1
                self.audit.append({"action": "customer.import_create", "entity_type": "customer", "entity_id": cid,
                                   "after": {"name": value["name"], "id_card": value["id_card"], "tags": value["tags"],
                                             "phones": [p for r in new_customer_rows[group] for p in r.phones]}})
            for line, ref in list(row_customer.items()):
                if isinstance(ref, str):
                    row_customer[line] = group_id[ref]
        customer_ids = {int(v) for v in row_customer.values()}
        new_ids = {group_id[g] for g in groups} if groups else set()

        # 3. Update existing customers whose name / ID / tags changed.
        # Plain dicts, not ORM objects: writes go through Core so the ORM must not flush anything itself.
        existing: dict[int, _CustomerState] = {
            c.id: {"name": c.name, "id_card": c.id_card, "tags": list(c.tags or [])}
            for c in await s.scalars(select(Customer).where(Customer.id.in_(customer_ids - new_ids)))
        }
        phones: dict[int, set[str]] = {cid: set() for cid in customer_ids}
        for cid, key in await s.execute(
            select(CustomerPhone.customer_id, CustomerPhone.phone_index).where(CustomerPhone.customer_id.in_(customer_ids))
        ):
            phones[cid].add(key)
        addresses: dict[int, dict[str, int]] = {cid: {} for cid in customer_ids}
        for aid, cid, key in await s.execute(
            select(Address.id, Address.customer_id, Address.normalized_index).where(Address.customer_id.in_(customer_ids))
        ):
            addresses[cid][key] = aid
        customer_updates: dict[int, dict[str, Any]] = {}
        rows_of: dict[int, list[ImportRow]] = {}
        for row in rows:
            rows_of.setdefault(int(row_customer[row.line]), []).append(row)
        for cid, members in rows_of.items():
            before = existing.get(cid)
            if before is None:
                continue
            # The customer's state after this batch, decided once from all its rows (so a re-run is a no-op).
            after: _CustomerState = {
                "name": members[-1].name,
                "id_card": next((r.id_card for r in members if r.id_card), None) or before["id_card"],
                "tags": list(dict.fromkeys([*before["tags"], *(t for r in members for t in r.tags)]))}
            if after != before:
                customer_updates[cid] = {"b_id": cid, "name": after["name"], "name_index": name_key(after["name"]),
                                         "id_card": after["id_card"],
                                         "id_card_index": id_card_key(after["id_card"]) if after["id_card"] else None,
                                         "tags": after["tags"]}
                self.audit.append({"action": "customer.import_update", "entity_type": "customer", "entity_id": cid,
                                   "before": before, "after": after})
        if customer_updates:
            table = table_of(Customer)
            await s.execute(update(table).where(table.c.id == bindparam("b_id")), list(customer_updates.values()))
            self.report.updated_customers += len(customer_updates)

        # 4. Phones and addresses: add what is new for each customer.
        new_phones = []
        new_addresses: list[tuple[int, AddressParts, str]] = []
        for row in rows:
            cid = int(row_customer[row.line])
            for phone in row.phones:
                key = phone_key(phone)
                if key not in phones[cid]:
                    phones[cid].add(key)
                    new_phones.append({"customer_id": cid, "phone": phone, "phone_index": key,
                                       "is_primary": len(phones[cid]) == 1})
            akey = address_key(row.address)
            if akey not in addresses[cid]:
                addresses[cid][akey] = -1
                new_addresses.append((cid, row.address, akey))
        if new_phones:
            await s.execute(insert(CustomerPhone), new_phones)
        if new_addresses:
            ids = await _insert_returning_ids(s, Address, [
                {"customer_id": cid, "district": p.district, "street": p.street, "community": p.community,
                 "building": p.building or None, "unit": p.unit or None, "room": p.room or None,
                 "normalized_index": key}
                for cid, p, key in new_addresses
            ], ("customer_id", "normalized_index"))
            for (cid, _, key), aid in zip(new_addresses, ids, strict=True):
                addresses[cid][key] = aid

        # 5. Accounts: insert new ones, update changed ones.
        inserts, updates = [], []
        for row in rows:
            cid = int(row_customer[row.line])
            values = {
                "customer_id": cid, "address_id": addresses[cid][address_key(row.address)],
                "account_type": row.account_type, "has_gas": row.has_gas, "has_heating": row.has_heating,
                "status": row.status, "meter_type": row.meter_type, "meter_serial": row.meter_serial,
                "heating_area_m2": row.heating_area_m2,
            }
            account = accounts.get(row.account_key)
            if account is None:
                inserts.append({"account_no": row.account_no, "account_no_index": row.account_key, **values})
                continue
            stored = {k: getattr(account, k) for k in values}
            if stored == values:
                if cid not in customer_updates:
                    self.report.unchanged += 1
                continue
            updates.append({"b_id": account.id, **values})
            self.audit.append({"action": "account.import_update", "entity_type": "account", "entity_id": account.id,
                               "before": {k: str(v) if v is not None else None for k, v in stored.items()},
                               "after": {k: str(v) if v is not None else None for k, v in values.items()}})
        if inserts:
            ids = await _insert_returning_ids(s, Account, inserts, ("account_no_index",))
            for aid, inserted in zip(ids, inserts, strict=True):
                self.audit.append({"action": "account.import_create", "entity_type": "account", "entity_id": aid,
                                   "after": {k: str(v) if v is not None else None for k, v in inserted.items()
                                             if k != "account_no_index"}})
            self.report.created_accounts += len(inserts)
        if updates:
            table = table_of(Account)
            await s.execute(update(table).where(table.c.id == bindparam("b_id")), updates)
            self.report.updated_accounts += len(updates)
        await record_audit_bulk(s, self.actor, self.audit)
        return rejected


async def import_customers(
    path: Path,
    actor: Actor,
    *,
    error_path: Path | None = None,
    batch_size: int = 2000,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import ``path``; rejected rows (with reasons) go to ``error_path`` (default ``<file>.errors.csv``)."""
    started = time.perf_counter()
    header, rows, total_rows = read_rows(path)
    report = ImportReport()
    error_path = error_path or path.with_name(path.stem + ".errors.csv")
    rejected: list[tuple[int, dict[str, str], str]] = []
    seen_accounts: dict[str, int] = {}
    batch: list[ImportRow] = []
    done = 0

    async def flush() -> None:
        nonlocal batch
        if not batch:
            return
        async with sessionmaker()() as session:
            writer = _BatchWriter(session, actor, report)
            snapshot = (report.created_customers, report.updated_customers, report.created_accounts,
                        report.updated_accounts, report.unchanged)
            try:
                conflicts = await writer.write(batch)
                await commit(session)
                rejected.extend((r.line, r.raw, reason) for r, reason in conflicts)
            except Exception as exc:  # the batch is all-or-nothing: report every row, keep going
                await rollback(session)
                (report.created_customers, report.updated_customers, report.created_accounts,
                 report.updated_accounts, report.unchanged) = snapshot
                rejected.extend((r.line, r.raw, f"写入失败，本批未导入: {type(exc).__name__}: {exc}"[:300])
                                for r in batch)
        batch = []

    for line, original, mapped in rows:
        report.total += 1
        done += 1
        try:
            row = check_row(line, original, mapped)
            if row.account_key in seen_accounts:
                raise InvalidInput(f"户号 {row.account_no} 在文件第 {seen_accounts[row.account_key]} 行已出现")
            seen_accounts[row.account_key] = line
            batch.append(row)
        except GasdeskError as exc:
            rejected.append((line, original, exc.message))
        if len(batch) >= batch_size:
            await flush()
        if on_progress and done % 500 == 0:
            on_progress(done, total_rows)
    await flush()
    if on_progress:
        on_progress(done, total_rows)

    report.rejected = len(rejected)
    report.errors = [(line, reason) for line, _, reason in sorted(rejected, key=lambda r: r[0])]
    if rejected:
        with error_path.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["行号", *header, "错误原因"])
            for line, original, reason in sorted(rejected, key=lambda r: r[0]):
                writer.writerow([line, *(original.get(c, "") for c in header), reason])
        report.error_file = error_path
    elif error_path.exists():
        error_path.unlink()  # a stale error file from an earlier run would mislead
    report.seconds = time.perf_counter() - started
    return report
