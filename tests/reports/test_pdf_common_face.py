"""PDFs set their text in the CJK font's common-characters face (GB 2312 and the symbols reports print),
built from the installed font once per machine: parsing and subsetting the whole 65,000-glyph face was most of
a yearly PDF's CPU. A report with a character outside that face is set in the whole face instead, and while the
face is not built yet (or its cache is off) PDFs use the whole face as before."""

from __future__ import annotations

import fcntl
import subprocess
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont

from gasdesk.config import reset_settings_cache
from gasdesk.reports import pdf
from gasdesk.reports.pdf import (
    CjkFont,
    build_common_face,
    common_face,
    common_face_path,
    find_cjk_font,
    report_to_pdf,
)
from tests.reports.conftest import sample_report

RARE = "堃"  # U+5803, in names; not in GB 2312


@pytest.fixture(scope="module")
def built() -> Path:
    """The machine's common face (the suite's shared cache, see tests/conftest.py), built here if no test
    has built it yet: several seconds of one core, once per machine."""
    path = common_face_path(find_cjk_font())
    assert path is not None
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        build_common_face(find_cjk_font(), path)
    return path


@pytest.fixture
def faces_used(monkeypatch) -> list[CjkFont]:
    """The faces ``report_to_pdf`` laid the text out in, in order."""
    used: list[CjkFont] = []
    compose = pdf._compose

    def recording(report, face, images):
        used.append(face)
        return compose(report, face, images)

    monkeypatch.setattr(pdf, "_compose", recording)
    return used


def _text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True,
                          timeout=20).stdout


def test_common_face_holds_everyday_chinese_and_not_rare_characters(built) -> None:
    face = TTFont(str(built))
    cmap = face.getBestCmap()
    for char in "燃气热力报修缴费开栓阀管改造安检坐席满意度和平区河西区0123456789%％·—（）：，。↑↓▲▼":
        assert ord(char) in cmap, char
    assert ord(RARE) not in cmap
    assert 8_000 < len(cmap) < 9_000 and face["maxp"].numGlyphs < 10_000
    assert built.stat().st_size < 3_000_000  # the whole face: ~16 MB of a 19 MB collection


def test_report_is_set_in_the_common_face(built, faces_used, tmp_path) -> None:
    text = _text(report_to_pdf(sample_report()), tmp_path)
    assert [face.path for face in faces_used] == [built]
    for expected in ("客服运营日报", "筛选条件：区域：和平区", "会话总数", "1,042 件", "+6.3%", "燃气报修", "坐席011"):
        assert expected in text, expected


def test_a_rare_character_sets_the_report_in_the_whole_face(built, faces_used, tmp_path) -> None:
    report = replace(sample_report(), title=f"客服运营日报（值班：王{RARE}）")
    text = _text(report_to_pdf(report), tmp_path)
    assert [face.path for face in faces_used] == [built, find_cjk_font().path]
    assert f"客服运营日报（值班：王{RARE}）" in text


def _builder_threads(path: Path | None) -> list[threading.Thread]:
    """The threads building ``path`` (other tests' PDFs may be building the suite's shared face meanwhile)."""
    return [t for t in threading.enumerate() if t.name == f"gasdesk-common-face {path}"]


def test_face_is_built_in_the_background_and_used_once_there(tmp_path, monkeypatch, faces_used) -> None:
    monkeypatch.setenv("GASDESK_REPORT_FONT_CACHE_DIR", str(tmp_path / "fonts"))
    reset_settings_cache()
    # A few hundred characters instead of GB 2312: the same build, in a fraction of the time.
    monkeypatch.setattr(pdf, "common_characters", lambda: frozenset(map(ord, "客服运营日报会话总数件坐席0123456789")))
    font = find_cjk_font()
    path = common_face_path(font)
    assert path is not None and path.parent == tmp_path / "fonts" and not path.exists()
    assert common_face(font) is None  # not built yet: this PDF uses the whole face, the build starts
    assert common_face(font) is None  # …once per process: no second builder while one runs
    builders = _builder_threads(path)
    assert len(builders) == 1
    builders[0].join(timeout=60)
    assert path.is_file()
    assert common_face(font) == CjkFont(path, 0, font.family)
    assert not list(path.parent.glob("*.part"))  # written whole, then renamed


def test_another_process_building_is_left_to_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GASDESK_REPORT_FONT_CACHE_DIR", str(tmp_path))
    reset_settings_cache()
    font = find_cjk_font()
    path = common_face_path(font)
    assert path is not None
    with open(path.with_name(path.name + ".lock"), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a builder in another process would hold it
        assert common_face(font) is None
        for builder in _builder_threads(path):
            builder.join(timeout=10)
    assert not path.exists()


def test_cache_off_means_the_whole_face(monkeypatch, faces_used, tmp_path) -> None:
    monkeypatch.setenv("GASDESK_REPORT_FONT_CACHE_DIR", "")
    reset_settings_cache()
    font = find_cjk_font()
    assert common_face_path(font) is None and common_face(font) is None and not _builder_threads(None)
    text = _text(report_to_pdf(replace(sample_report(), charts=[])), tmp_path)
    assert [face.path for face in faces_used] == [font.path] and "客服运营日报" in text
