"""``gasdesk import customers FILE.csv``: exit codes, messages, and what ends up stored."""

from __future__ import annotations

from pathlib import Path

from gasdesk import db
from gasdesk.customers.service import CustomerQuery, find_customers
from tests.factories import invoke_cli, make_id_card, read_csv, table_counts, write_csv

HEADER = ["户号", "姓名", "电话", "身份证号", "区", "小区", "楼栋", "单元", "室", "表类型"]
ROWS = [
    ["2200000001", "张伟", "13800001234", make_id_card(11), "和平区", "幸福里小区", "3", "2", "501", "IC卡表"],
    ["2200000002", "李娜", "13900005678", "", "铁西区", "兴华小区", "12", "1", "1201", "机械表"],
]


invoke = invoke_cli


async def stored() -> dict[str, int]:
    async with db.sessionmaker()() as s:
        return await table_counts(s, "customers", "accounts", "customer_phones", "addresses", "audit_entries")


async def test_clean_file_exits_0_and_is_searchable(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ok.csv", HEADER, ROWS)
    result = await invoke("import", "customers", str(path))
    assert result.exit_code == 0, result.output
    assert "共 2 行" in result.output and "新建客户 2" in result.output and "拒绝 0" in result.output
    assert not (tmp_path / "ok.errors.csv").exists()
    async with db.sessionmaker()() as s:
        [customer] = await find_customers(s, CustomerQuery(q="13900005678"))
        assert customer.name == "李娜" and customer.accounts[0].meter_type == "mechanical"

    # running it again is idempotent
    before = await stored()
    result = await invoke("import", "customers", str(path))
    assert result.exit_code == 0, result.output
    assert "新建客户 0" in result.output and "未变化 2" in result.output
    assert await stored() == before


async def test_rejected_rows_exit_3_with_error_file(tmp_path: Path) -> None:
    rows = [*ROWS, ["2200000003", "王强", "123", "", "和平区", "幸福里小区", "1", "1", "101", ""]]
    path = write_csv(tmp_path / "some-bad.csv", HEADER, rows, encoding="gbk")
    errors = tmp_path / "rejected.csv"
    result = await invoke("import", "customers", str(path), "--errors", str(errors), "--batch-size", "1")
    assert result.exit_code == 3, result.output
    assert "拒绝 1" in result.output and "rejected.csv" in result.output
    content = read_csv(errors)
    assert content[0] == ["行号", *HEADER, "错误原因"]
    assert content[1][:-1] == ["4", *rows[2]]
    assert "电话号码格式不正确" in content[1][-1]
    assert (await stored())["accounts"] == 2


async def test_missing_column_exits_nonzero_and_stores_nothing(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "noname.csv", ["户号", "电话", "区", "小区"], [["2200000009", "13800001234", "和平区", "幸福里"]])
    result = await invoke("import", "customers", str(path))
    assert result.exit_code not in (0, 3)
    assert "缺少必需的列" in result.output and "姓名" in result.output
    assert await stored() == dict.fromkeys(["customers", "accounts", "customer_phones", "addresses", "audit_entries"], 0)


async def test_nonexistent_file_exits_nonzero_with_message(tmp_path: Path) -> None:
    result = await invoke("import", "customers", str(tmp_path / "missing.csv"))
    assert result.exit_code not in (0, 3)
    assert "文件不存在" in result.output and "missing.csv" in result.output


async def test_batch_size_must_be_positive(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ok.csv", HEADER, ROWS)
    result = await invoke("import", "customers", str(path), "--batch-size", "0")
    assert result.exit_code == 1 and "batch-size" in result.output
    assert (await stored())["customers"] == 0


async def test_user_create_command(tmp_path: Path) -> None:
    result = await invoke("user", "create", "ops.lead", "--role", "supervisor", "--password", "long-enough-pw")
    assert result.exit_code == 0, result.output
    assert "ops.lead" in result.output
    result = await invoke("user", "create", "ops.lead", "--role", "supervisor", "--password", "long-enough-pw")
    assert result.exit_code == 1 and "已存在" in result.output
    result = await invoke("user", "create", "someone", "--role", "boss", "--password", "long-enough-pw")
    assert result.exit_code == 1 and "未知角色" in result.output
