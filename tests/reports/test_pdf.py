"""The PDF export: poppler reads its Chinese text back (the CJK font is embedded with a Unicode map),
page 1 renders to a non-blank image, the charts are images on the pages, long tables run over pages with
their header repeated, and a machine without a CJK font gets a typed error rather than a PDF of boxes.
Each PDF is rendered once per module (about a second each) and inspected by several tests."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from gasdesk.reports import pdf
from gasdesk.reports.pdf import ReportFontMissing, find_cjk_font, report_to_pdf
from tests.reports.conftest import sample_report

POPPLER_TIMEOUT_S = 20


def _poppler(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=POPPLER_TIMEOUT_S).stdout


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    path.write_bytes(report_to_pdf(sample_report()))
    return path


@pytest.fixture(scope="module")
def long_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "long.pdf"
    path.write_bytes(report_to_pdf(replace(sample_report(rows=150), charts=[])))  # the tables only
    return path


def test_text_is_extractable_in_chinese(rendered) -> None:
    assert rendered.read_bytes().startswith(b"%PDF-")
    text = _poppler("pdftotext", "-layout", str(rendered), "-")
    for expected in ("客服运营日报", "统计周期：2026-12-03（2026-12-03 00:00 至 2026-12-04 00:00）", "对比周期：2026-12-02",
                     "筛选条件：区域：和平区", "关键指标", "会话总数", "1,042 件", "980 件", "+6.3%",
                     "智能客服承接率", "63.5%", "60.25%", "+3.2 个百分点", "满意度", "4.62 分",
                     "各时段会话量", "高峰时段热力图", "坐席工作量", "坐席011", "300.5", "热点问题", "燃气报修"):
        assert expected in text, expected
    fonts = _poppler("pdffonts", str(rendered))
    cjk = [line for line in fonts.splitlines() if "CJK" in line]
    assert cjk and all(" yes yes yes " in line for line in cjk)  # embedded, subset, with a ToUnicode map


def test_first_page_renders_with_content(rendered, tmp_path) -> None:
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(rendered), str(tmp_path / "page")],
                   check=True, timeout=POPPLER_TIMEOUT_S)
    page = Image.open(next(tmp_path.glob("page*.png"))).convert("L")
    dark = sum(1 for v in page.tobytes() if v < 200)
    assert page.size[0] > 300 and dark / (page.size[0] * page.size[1]) > 0.01


def test_charts_are_images_on_the_pages(rendered) -> None:
    listing = _poppler("pdfimages", "-list", str(rendered))
    images = [line.split() for line in listing.splitlines()[2:] if " image " in line]
    assert len(images) == len(sample_report().charts)
    assert all(int(cols[3]) >= 900 for cols in images)  # width in pixels: drawn at print resolution


def test_long_tables_run_over_pages_with_their_header(long_table) -> None:
    text = _poppler("pdftotext", "-layout", str(long_table), "-")
    pages = [p for p in text.split("\f") if p.strip()]
    assert len(pages) >= 4
    with_rows = [p for p in pages if "坐席1" in p]
    assert len(with_rows) >= 2 and all("平均处理时长（秒）" in p for p in with_rows)
    assert "坐席149" in text
    assert f"第 1 / {len(pages)} 页" in text and f"第 {len(pages)} / {len(pages)} 页" in text


def test_no_cjk_font_is_a_typed_error(monkeypatch) -> None:
    find_cjk_font.cache_clear()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(pdf, "FONT_FILES", [("/nonexistent/font.ttc", 0)])
    try:
        with pytest.raises(ReportFontMissing) as raised:
            report_to_pdf(sample_report())
        assert raised.value.status_code == 503 and raised.value.code == "report_font_missing"
        assert "fonts-noto-cjk" in raised.value.message
    finally:
        find_cjk_font.cache_clear()


def test_font_found_through_fontconfig() -> None:
    find_cjk_font.cache_clear()
    font = find_cjk_font()
    assert font.family == "Noto Sans CJK SC" and font.path.name == "NotoSansCJK-Regular.ttc" and font.index == 2
