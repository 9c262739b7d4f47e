"""Import from xlsx and GBK CSV: every row validated, rejected rows reported, re-import idempotent by title."""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import Workbook
from sqlalchemy import func, select

from gasdesk.audit.service import Actor
from gasdesk.kb.importer import import_articles
from gasdesk.kb.models import KbArticle, KbArticleVersion

HEADER = ["标题", "问法", "答案", "分类", "标签", "渠道", "生效日期", "失效日期"]
ROWS = [
    ["IC卡表换电池", "燃气表怎么换电池｜卡表没电了\n电池符号闪", "用 2 节 5 号碱性电池，换好后插一次卡。", "表具使用",
     "电池,IC卡表", "网页、微信", "2026-01-01", ""],
    ["", "没有标题", "答案", "表具使用", "", "", "", ""],
    ["没有答案的条目", "问法", "", "表具使用", "", "", "", ""],
    ["渠道错误", "问法", "答案", "分类", "", "传真", "", ""],
    ["日期错误", "问法", "答案", "分类", "", "", "2026-13-45", ""],
    ["营业时间", "营业厅几点开门", "周一至周五 8:30-17:00。", "营业厅", "", "", "2026-01-01", "2026-12-31"],
    ["营业时间", "重复的标题", "答案", "营业厅", "", "", "", ""],
]
ACTOR = Actor.system("kb-import-test", "test")


def _xlsx(path: Path, rows: list[list[str]]) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def _csv(path: Path, rows: list[list[str]], encoding: str) -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


async def _counts(session) -> tuple[int, int]:
    return (await session.scalar(select(func.count()).select_from(KbArticle)),
            await session.scalar(select(func.count()).select_from(KbArticleVersion)))


async def test_xlsx_import_reports_bad_rows_and_is_idempotent(session, tmp_path) -> None:
    report = await import_articles(_xlsx(tmp_path / "kb.xlsx", ROWS), ACTOR)
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    reasons = {r.row: r.reason for r in report.rejected}
    assert set(reasons) == {3, 4, 5, 6, 8}
    assert "标题" in reasons[3] and "答案" in reasons[4] and "传真" in reasons[5] and "日期" in reasons[6]
    assert "重复" in reasons[8]
    article = await session.scalar(select(KbArticle).where(KbArticle.title == "IC卡表换电池"))
    assert article.questions == ["燃气表怎么换电池", "卡表没电了", "电池符号闪"]
    assert article.channels == ["webchat", "wechat"] and article.tags == ["电池", "IC卡表"]
    assert article.status == "published" and str(article.valid_from) == "2026-01-01"
    assert await _counts(session) == (2, 2)

    again = await import_articles(_xlsx(tmp_path / "kb2.xlsx", ROWS), ACTOR)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert await _counts(session) == (2, 2)

    changed = [list(ROWS[0]), list(ROWS[5])]
    changed[0][2] = "用 2 节 5 号碱性电池（不要用充电电池），换好后插一次卡。"
    third = await import_articles(_xlsx(tmp_path / "kb3.xlsx", changed), ACTOR)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 1)
    session.expire_all()
    article = await session.scalar(select(KbArticle).where(KbArticle.title == "IC卡表换电池"))
    assert article.version == 2 and "充电电池" in article.answer
    assert await _counts(session) == (2, 3)


async def test_gbk_and_utf8_csv(session, tmp_path) -> None:
    gbk = await import_articles(_csv(tmp_path / "kb_gbk.csv", ROWS, "gbk"), ACTOR)
    assert gbk.created == 2 and len(gbk.rejected) == 5
    article = await session.scalar(select(KbArticle).where(KbArticle.title == "营业时间"))
    assert article.answer == "周一至周五 8:30-17:00。"
    utf8 = await import_articles(_csv(tmp_path / "kb_utf8.csv", ROWS, "utf-8-sig"), ACTOR)
    assert (utf8.created, utf8.unchanged) == (0, 2)


async def test_unusable_file(tmp_path) -> None:
    import pytest

    from gasdesk.errors import InvalidInput

    path = tmp_path / "bad.csv"
    path.write_text("名字,内容\n甲,乙\n", encoding="utf-8")
    with pytest.raises(InvalidInput):
        await import_articles(path, ACTOR)
