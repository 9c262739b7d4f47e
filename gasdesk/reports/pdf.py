"""A report as a PDF: title, period, filters, the KPI table against the previous period, every chart drawn
server-side (matplotlib, PNG) and every table (split across pages with its header repeated).

fpdf2 lays the page out and embeds a subset of a CJK font (Noto Sans CJK, an OpenType font with CFF
outlines, which fpdf2 embeds as CIDFontType0 with a ToUnicode map), so the Chinese text is selectable and
``pdftotext`` reads it. reportlab was the other choice; it embeds only TrueType outlines, and the CJK fonts
Debian ships (fonts-noto-cjk) are CFF. matplotlib draws the charts with the same font family."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from gasdesk.clock import format_local
from gasdesk.config import get_settings
from gasdesk.errors import ServiceUnavailable
from gasdesk.reports.figures import filter_line, format_number, kpi_change, period_line
from gasdesk.reports.model import Cell, Chart, Report, Table

if TYPE_CHECKING:
    from fpdf import FPDF

log = logging.getLogger(__name__)

# Where distributions put a Chinese sans font when fontconfig cannot tell us: (file, face index in the collection).
FONT_FILES: list[tuple[str, int]] = [
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
]
# fontconfig families, best first: the simplified-Chinese face of Noto / Source Han, then any sans.
PREFERRED_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "Source Han Sans CN", "Noto Sans CJK",
                      "WenQuanYi Zen Hei", "WenQuanYi Micro Hei")
OUTLINE_SUFFIXES = (".ttf", ".ttc", ".otf", ".otc")
FC_TIMEOUT_S = 5
REGULAR_WEIGHT = 80  # fontconfig's weight of a regular face (bold is 200)

PAGE_WIDTH_MM = 180  # A4 less 15 mm margins
CHART_HEIGHT_MM = 80
CHART_DPI = 150
GOOD_RGB = (46, 125, 50)
BAD_RGB = (198, 40, 40)
HEADER_RGB = (47, 85, 151)
PALETTE = ["#2F5597", "#ED7D31", "#70AD47", "#FFC000", "#5B9BD5", "#A5A5A5", "#7030A0", "#C00000"]

# matplotlib's font cache and rcParams are process-wide and not thread-safe; exports render in worker threads.
_DRAW_LOCK = threading.Lock()


class ReportFontMissing(ServiceUnavailable):
    """No Chinese font on this machine: a PDF would show empty boxes instead of text."""

    code = "report_font_missing"


@dataclass(frozen=True)
class CjkFont:
    """A font file with Chinese glyphs, the face to use inside a collection (.ttc) and its family name."""

    path: Path
    index: int
    family: str


def report_to_pdf(report: Report) -> bytes:
    """Render ``report`` as a PDF (bytes), charts drawn server-side. Pure: reads only the report.
    Raises :class:`ReportFontMissing` when no CJK font is installed (Debian: fonts-noto-cjk).

    The text is set in the font's common-characters face when this machine has built it (``common_face``):
    parsing and subsetting the whole CJK face (65,000 glyphs) was 70 % of a yearly PDF's CPU. A report with a
    character outside that face (a rare name) is set again in the whole face, so no glyph is ever missing."""
    regular = find_cjk_font()
    images = [chart_image(chart, regular) for chart in report.charts]
    common = common_face(regular)
    if common is not None:
        pdf = _compose(report, common, images)
        if not getattr(pdf.fonts["cjk"], "missing_glyphs", None):  # a TTFFont: every character was there
            return bytes(pdf.output())
    return bytes(_compose(report, regular, images).output())


def _compose(report: Report, face: CjkFont, images: list[Image.Image]) -> FPDF:
    """The laid-out document with its text in ``face`` (not yet output: ``missing_glyphs`` tells whether the
    face had every character)."""
    # fpdf2 and matplotlib cost about a second to import and only exports use them.
    from fpdf import FPDF, FontFace  # noqa: PLC0415 - heavy (about a second with matplotlib), exports only

    class _Pdf(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("cjk", size=8)
            self.set_text_color(120, 120, 120)
            self.cell(0, 8, f"{report.title}  ·  第 {self.page_no()} / {{nb}} 页", align="C")

    pdf = _Pdf(orientation="P", unit="mm", format="A4")
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(auto=True, margin=18)
    # One face only: parsing and subsetting a CJK face is most of a PDF's cost; headings stand out by size and
    # colour instead of weight.
    pdf.add_font("cjk", "", str(face.path), collection_font_number=face.index)
    pdf.set_title(report.title)
    pdf.set_creator("gasdesk")
    pdf.set_lang("zh-CN")
    pdf.add_page()

    pdf.set_font("cjk", size=20)
    pdf.set_text_color(*HEADER_RGB)
    pdf.multi_cell(0, 11, report.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("cjk", size=10)
    for label, value in (("统计周期", period_line(report)),
                         ("对比周期", report.previous.label if report.previous else "—"),
                         ("筛选条件", filter_line(report)),
                         ("生成时间", format_local(report.generated_at))):
        pdf.multi_cell(0, 6, f"{label}：{value}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    if report.kpis:
        _section(pdf, "关键指标")
        headings = FontFace(color=(255, 255, 255), fill_color=HEADER_RGB)
        with pdf.table(col_widths=(60, 40, 40, 40), text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
                       headings_style=headings, line_height=7, repeat_headings=1) as table:
            row = table.row()
            for label in ("指标", "本期", "上期", "变化"):
                row.cell(label)
            for kpi in report.kpis:
                change = kpi_change(kpi)
                row = table.row()
                row.cell(kpi.label)
                row.cell(format_number(kpi.value, kpi.unit))
                row.cell(format_number(kpi.previous, kpi.unit))
                colour = None if change is None or change.good is None else GOOD_RGB if change.good else BAD_RGB
                row.cell(change.text if change else "—", style=FontFace(color=colour) if colour else None)
        pdf.ln(4)

    for chart, image in zip(report.charts, images, strict=True):
        if pdf.will_page_break(CHART_HEIGHT_MM + 12):
            pdf.add_page()
        _section(pdf, chart.title)
        pdf.image(image, w=PAGE_WIDTH_MM, h=CHART_HEIGHT_MM)
        pdf.ln(4)

    for table_ in report.tables:
        _table(pdf, table_)

    if report.notes:
        _section(pdf, "说明")
        pdf.set_font("cjk", size=9)
        for note in report.notes:
            pdf.multi_cell(0, 5, f"· {note}", new_x="LMARGIN", new_y="NEXT")
    return pdf


def _section(pdf: FPDF, title: str) -> None:
    pdf.set_font("cjk", size=13)
    pdf.set_text_color(*HEADER_RGB)
    pdf.cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("cjk", size=9)


def _table(pdf: FPDF, table: Table) -> None:
    from fpdf import FontFace  # noqa: PLC0415 - heavy, exports only (see report_to_pdf)

    if pdf.will_page_break(30):
        pdf.add_page()
    _section(pdf, table.title)
    if not table.rows:
        pdf.cell(0, 6, "（无数据）", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        return
    numeric = [all(isinstance(r[j], int | float) or r[j] is None for r in table.rows if j < len(r))
               for j in range(len(table.columns))]
    headings = FontFace(color=(255, 255, 255), fill_color=HEADER_RGB)
    # The header row repeats on every page the table runs onto.
    with pdf.table(text_align=tuple("RIGHT" if n else "LEFT" for n in numeric), headings_style=headings,
                   line_height=6, repeat_headings=1) as out:
        row = out.row()
        for column in table.columns:
            row.cell(column)
        for values in table.rows:
            row = out.row()
            for j in range(len(table.columns)):
                row.cell(_cell_text(values[j] if j < len(values) else None))
    pdf.ln(4)


def _cell_text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, int | float):
        return format_number(value)
    return value


# ---------------------------------------------------------------- charts


def chart_image(chart: Chart, font: CjkFont) -> Image.Image:
    """Draw one chart with matplotlib's Agg canvas (no pyplot: no global figure state) into an RGB image;
    fpdf2 compresses it itself, so no PNG is encoded and decoded on the way."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - heavy, exports only
    from matplotlib.figure import Figure  # noqa: PLC0415 - heavy, exports only

    with _DRAW_LOCK:
        _setup_matplotlib(font)
        fig = Figure(figsize=(PAGE_WIDTH_MM / 25.4, CHART_HEIGHT_MM / 25.4), dpi=CHART_DPI)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        _draw(ax, chart)
        fig.tight_layout()
        canvas.draw()
        width, height = canvas.get_width_height()
        return Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba()).convert("RGB")


def _draw(ax: Any, chart: Chart) -> None:
    import numpy as np  # noqa: PLC0415 - comes with matplotlib; only charts need it

    x = np.arange(len(chart.categories))
    # One value per category: a short series is padded with gaps, a long one cut.
    values = [np.array([np.nan if v is None else v for v in (list(s.values) + [None] * len(x))[:len(x)]], dtype=float)
              for s in chart.series]
    if chart.kind == "line":
        for i, (series, ys) in enumerate(zip(chart.series, values, strict=True)):
            ax.plot(x, ys, marker="o", markersize=2.5, linewidth=1.5, color=PALETTE[i % len(PALETTE)],
                    label=series.name)
    elif chart.kind in ("bar", "stacked_bar"):
        stacked = chart.kind == "stacked_bar"
        count = max(1, len(values))
        width = 0.8 if stacked else 0.8 / count
        bottom = np.zeros(len(x))
        for i, (series, ys) in enumerate(zip(chart.series, values, strict=True)):
            ys = np.nan_to_num(ys)
            offset = 0 if stacked else (i - (count - 1) / 2) * width
            ax.bar(x + offset, ys, width, bottom=bottom if stacked else None, color=PALETTE[i % len(PALETTE)],
                   label=series.name)
            if stacked:
                bottom = bottom + ys
    elif chart.kind == "pie":
        ys = np.nan_to_num(values[0]) if values else np.array([])
        if ys.sum() > 0:
            ax.pie(ys, labels=chart.categories[:len(ys)], autopct="%1.1f%%", startangle=90, counterclock=False,
                   colors=[PALETTE[i % len(PALETTE)] for i in range(len(ys))], textprops={"fontsize": 8})
            ax.axis("equal")
        else:
            ax.text(0.5, 0.5, "无数据", ha="center", va="center", transform=ax.transAxes)
            ax.axis("off")
        return
    else:  # heatmap: one row per y label
        grid = np.array(values, dtype=float) if values else np.zeros((1, len(x)))
        image = ax.imshow(np.nan_to_num(grid), aspect="auto", cmap="YlOrRd", interpolation="nearest")
        ax.set_yticks(range(len(values)), chart.y_categories or [s.name for s in chart.series], fontsize=7)
        ax.figure.colorbar(image, ax=ax, fraction=0.03, pad=0.02)
        if grid.size <= 24 * 7:
            for (r, c), v in np.ndenumerate(grid):
                if not np.isnan(v):
                    ax.text(c, r, format_number(v), ha="center", va="center", fontsize=5)
    step = max(1, len(chart.categories) // 24)  # at most ~24 labels along the axis
    ax.set_xticks(x[::step], [chart.categories[i] for i in range(0, len(chart.categories), step)], fontsize=7,
                  rotation=45 if len(chart.categories) > 12 else 0)
    if chart.kind != "heatmap":
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
        if chart.unit:
            ax.set_ylabel(chart.unit, fontsize=8)
        if len(chart.series) > 1:
            ax.legend(fontsize=7, frameon=False)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)


@lru_cache(maxsize=1)
def _setup_matplotlib(font: CjkFont) -> None:
    """Teach matplotlib the CJK font (by file, so a font installed after its cache was built is found too)
    and make it the default family; rcParams are process-wide and only exports draw with matplotlib."""
    import matplotlib  # noqa: PLC0415 - heavy, exports only
    from matplotlib import font_manager  # noqa: PLC0415 - heavy, exports only

    font_manager.fontManager.addfont(str(font.path))
    matplotlib.rcParams["font.family"] = [font.family, "DejaVu Sans"]
    matplotlib.rcParams["axes.unicode_minus"] = False  # the CJK font has no U+2212


# ---------------------------------------------------------------- fonts


@lru_cache(maxsize=1)
def find_cjk_font() -> CjkFont:
    """The Chinese font to draw with: fontconfig's best simplified-Chinese sans (``fc-list :lang=zh-cn``),
    else a known path. Raises :class:`ReportFontMissing` when there is none."""
    found = _from_fontconfig() or _from_known_paths()
    if found is None:
        raise ReportFontMissing("服务器未安装中文字体（如 Noto Sans CJK，Debian 软件包 fonts-noto-cjk），无法生成 PDF 报表")
    return found


def _from_fontconfig() -> CjkFont | None:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    try:
        listing = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [fc_list, "-f", "%{file}\t%{index}\t%{family[0]}\t%{weight}\n", ":lang=zh-cn"],
            capture_output=True, text=True, timeout=FC_TIMEOUT_S, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    best: tuple[tuple[int, int], CjkFont] | None = None
    for line in listing.splitlines():
        parts = line.split("\t")
        if len(parts) != 4 or not parts[0].lower().endswith(OUTLINE_SUFFIXES):
            continue
        path, index, family, weight = parts
        if "Mono" in family or "Serif" in family:
            continue
        rank = next((i for i, name in enumerate(PREFERRED_FAMILIES) if family.startswith(name)), len(PREFERRED_FAMILIES))
        try:
            key = (rank, abs(int(float(weight)) - REGULAR_WEIGHT))
            candidate = CjkFont(Path(path), int(index), family)
        except ValueError:
            continue
        if (best is None or key < best[0]) and candidate.path.is_file():
            best = (key, candidate)
    return best[1] if best else None


def _from_known_paths() -> CjkFont | None:
    for path, index in FONT_FILES:
        if Path(path).is_file():
            family = "Noto Sans CJK SC" if "Noto" in path else "WenQuanYi Zen Hei"
            return CjkFont(Path(path), index, family)
    return None


# ---------------------------------------------------------------- the common-characters face

# Bump when ``common_characters`` or the subsetting options change: the next PDF builds a new file.
COMMON_FACE_VERSION = 1
# Beside GB 2312: punctuation, letter-like symbols, arrows, maths, box drawing and shapes, enclosed numbers,
# CJK symbols, full-width forms — what labels, units and change markers print.
COMMON_RANGES = ((0x20, 0x7F), (0xA0, 0x100), (0x2000, 0x2070), (0x2100, 0x2300), (0x2460, 0x2700),
                 (0x3000, 0x3040), (0xFF00, 0xFFF0))
_building: set[Path] = set()
_building_lock = threading.Lock()


@lru_cache(maxsize=1)
def common_characters() -> frozenset[int]:
    """GB 2312's characters (the 6,763 hanzi of everyday simplified Chinese, with its punctuation and
    symbols) and ``COMMON_RANGES``: about 8,300 characters, against the 65,000 glyphs of a CJK face."""
    found = {cp for first, end in COMMON_RANGES for cp in range(first, end)}
    for high in range(0xA1, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                found.add(ord(bytes((high, low)).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return frozenset(found)


def common_face_path(font: CjkFont) -> Path | None:
    """Where ``font``'s common-characters face is kept (named after the font file's size and time, so an
    updated font gets a new face); None when the cache is off (``report_font_cache_dir`` empty)."""
    folder = get_settings().report_font_cache_folder
    if folder is None:
        return None
    stat = font.path.stat()
    return folder / f"{font.path.stem}-{font.index}-{stat.st_size}-{stat.st_mtime_ns}-v{COMMON_FACE_VERSION}.otf"


def common_face(font: CjkFont) -> CjkFont | None:
    """``font``'s common-characters face when it is built; else None — and it is built in the background (a
    few seconds of one core, once per machine: a lock file keeps other processes from building it too)."""
    path = common_face_path(font)
    if path is None:
        return None
    if path.is_file():
        return CjkFont(path, 0, font.family)
    with _building_lock:
        if path in _building:
            return None
        _building.add(path)
    # The thread inherits the caller's scheduling class: in a render process, the idle class.
    threading.Thread(target=_build_in_background, args=(font, path), name=f"gasdesk-common-face {path}",
                     daemon=True).start()
    return None


def _build_in_background(font: CjkFont, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another process is building it
            if not path.is_file():
                build_common_face(font, path)
    except Exception:  # a PDF never depends on it: the whole face is used meanwhile
        log.exception("building the common-characters face of %s failed", font.path.name)
    finally:
        with _building_lock:
            _building.discard(path)


def build_common_face(font: CjkFont, path: Path) -> Path:
    """Subset ``font`` to ``common_characters`` into ``path``, written whole or not at all. Layout tables
    (GSUB/GPOS: shaping, vertical text) are left out as fpdf2 leaves them out of every PDF anyway."""
    from fontTools import subset  # noqa: PLC0415 - exports only
    from fontTools.ttLib import TTFont  # noqa: PLC0415 - exports only

    face = TTFont(str(font.path), fontNumber=font.index, recalcTimestamp=False, lazy=True)
    options = subset.Options(notdef_outline=True, recommended_glyphs=True, name_IDs=["*"], name_languages=["*"],
                             layout_features=[])
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "vhea", "vmtx", "VORG"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=common_characters())
    subsetter.subset(face)
    part = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.part")
    face.save(str(part))
    os.replace(part, path)
    return path
