"""Import knowledge articles from xlsx or CSV (UTF-8 or GBK).

Columns: 标题, 问法 (several, separated by ｜ or a new line), 答案, 分类, 标签, 渠道, 生效日期, 失效日期 and
optionally 状态 (草稿/发布/归档; default 发布). Every row is validated on its own and rejected rows are
reported with their reasons. The title identifies an article: re-importing a file updates the articles
whose content changed (each gets a new version) and leaves identical ones alone, so it is idempotent.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from gasdesk.audit.service import Actor
from gasdesk.db import transaction
from gasdesk.errors import GasdeskError, InvalidInput
from gasdesk.kb.models import KbArticle
from gasdesk.kb.service import ArticleInput, check_article, do_create_article, do_update_article

HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "title": ("标题", "title", "问题", "标准问"),
    "questions": ("问法", "相似问法", "questions", "相似问"),
    "answer": ("答案", "answer", "回答", "答复"),
    "category": ("分类", "category", "类别"),
    "tags": ("标签", "tags"),
    "channels": ("渠道", "channels", "适用渠道"),
    "valid_from": ("生效日期", "valid_from", "生效时间"),
    "valid_to": ("失效日期", "valid_to", "失效时间"),
    "status": ("状态", "status"),
}
STATUS_ALIASES = {"": "published", "发布": "published", "已发布": "published", "published": "published",
                  "草稿": "draft", "draft": "draft", "归档": "archived", "已归档": "archived", "archived": "archived"}
MAX_ROWS = 5000


@dataclass
class RejectedRow:
    row: int  # 1-based line of the file, the header being line 1
    title: str
    reason: str


@dataclass
class KbImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged + len(self.rejected)

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "rejected": [{"row": r.row, "title": r.title, "reason": r.reason} for r in self.rejected]}


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput("无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV", code="invalid_kb_file")


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows as {field: value} keyed by our field names; raises InvalidInput for an unusable file."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook  # noqa: PLC0415 - loaded only for an .xlsx upload (a heavy import)

        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for broken files
            raise InvalidInput("无法读取 Excel 文件", code="invalid_kb_file") from exc
        try:
            sheet = book.worksheets[0]
            table = [list(r) for r in sheet.iter_rows(values_only=True)]
        finally:
            book.close()
    else:
        table = [list(r) for r in csv.reader(io.StringIO(_decode(path.read_bytes())))]
    if not table:
        raise InvalidInput("文件为空", code="invalid_kb_file")
    header = [str(h or "").strip().lower() for h in table[0]]
    columns: dict[str, int] = {}
    for name, aliases in HEADER_ALIASES.items():
        for i, h in enumerate(header):
            if h in {a.lower() for a in aliases}:
                columns[name] = i
                break
    missing = [HEADER_ALIASES[n][0] for n in ("title", "answer") if n not in columns]
    if missing:
        raise InvalidInput(f"缺少必需的列：{'、'.join(missing)}", code="invalid_kb_file")
    if len(table) - 1 > MAX_ROWS:
        raise InvalidInput(f"一次最多导入 {MAX_ROWS} 行", code="invalid_kb_file")
    rows = []
    for values in table[1:]:
        row = {name: (values[i] if i < len(values) else None) for name, i in columns.items()}
        rows.append({k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()})
    return rows


async def import_articles(path: str | Path, actor: Actor) -> KbImportReport:
    """Validate and import every row of ``path``; one transaction for the valid rows."""
    path = Path(path)
    report = KbImportReport()
    rows = read_rows(path)
    valid: list[tuple[int, ArticleInput, str]] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        if all(v in (None, "") for v in row.values()):
            continue
        title = str(row.get("title") or "").strip()
        try:
            status = STATUS_ALIASES.get(str(row.get("status") or "").strip().lower())
            if status is None:
                raise InvalidInput("状态应为 草稿、发布 或 归档", code="invalid_kb_status")
            data = check_article(title=title, questions=row.get("questions"), answer=row.get("answer"),
                                 category=row.get("category"), tags=row.get("tags"), channels=row.get("channels"),
                                 valid_from=row.get("valid_from"), valid_to=row.get("valid_to"))
            if data.title in seen:
                raise InvalidInput(f"标题与第 {seen[data.title]} 行重复", code="duplicate_kb_title")
        except GasdeskError as exc:
            report.rejected.append(RejectedRow(line, title[:60], exc.message))
            continue
        seen[data.title] = line
        valid.append((line, data, status))
    if not valid:
        return report
    async with transaction() as session:
        titles = [d.title for _, d, _ in valid]
        existing = {a.title: a for a in await session.scalars(select(KbArticle).where(KbArticle.title.in_(titles)))}
        for line, data, status in valid:
            try:
                article = existing.get(data.title)
                if article is None:
                    await do_create_article(session, actor, data, status=status, note=f"导入：{path.name}")
                    report.created += 1
                elif await do_update_article(session, actor, article, data, status=status,
                                             note=f"导入：{path.name}"):
                    report.updated += 1
                else:
                    report.unchanged += 1
            except GasdeskError as exc:
                report.rejected.append(RejectedRow(line, data.title[:60], exc.message))
    return report


DEMO_KB_PATH = Path(__file__).resolve().parent / "data" / "demo_kb.jsonl"


async def load_demo_kb(actor: Actor | None = None, path: Path = DEMO_KB_PATH) -> int:
    """Publish the demo articles whose titles are not in the knowledge base yet; returns how many were added.
    Idempotent: existing articles (possibly edited by admins) are left alone."""
    actor = actor or Actor.system("seed-demo")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    added = 0
    async with transaction() as session:
        existing = set(await session.scalars(select(KbArticle.title)))
        for record in records:
            if record["title"] in existing:
                continue
            data = check_article(**{k: record.get(k) for k in ("title", "questions", "answer", "category", "tags",
                                                              "channels", "valid_from", "valid_to")})
            await do_create_article(session, actor, data, status="published", note="演示知识库")
            existing.add(data.title)
            added += 1
    return added
