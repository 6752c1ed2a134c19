"""PDF parsing on the corpus broker report and on manuals generated here with reportlab."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.config import IngestConfig, LimitsConfig
from ingest.parsers import parse_file
from ingest.types import Line, RawTable
from kgqa.errors import IngestError

WQY = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
HEADER = "星河集团财务管理手册"
TABLE = [["项目", "审批人", "限额（万元）"], ["差旅费", "部门经理", "5"], ["采购款", "财务总监", "200"]]


def _cjk_font() -> str:
    if not WQY.exists():
        pytest.skip(f"Chinese font {WQY} not installed (apt-get install fonts-wqy-microhei)")
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if "wqy" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("wqy", str(WQY), subfontIndex=0))
    return "wqy"


def make_manual(path: Path, pages: int = 3, title: str | None = None) -> Path:
    """A small manual: running header, body text, a ruled table on page 2, page-number footer."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas
    from reportlab.platypus import Table, TableStyle

    font = _cjk_font()
    width, height = A4
    c = canvas.Canvas(str(path), pagesize=A4)
    if title is not None:
        c.setTitle(title)
    for n in range(1, pages + 1):
        c.setFont(font, 10)
        c.drawString(72, height - 40, HEADER)
        c.setFont(font, 12)
        c.drawString(72, height - 100, f"第{n}条 本条规定第{n}类费用的报销流程。")
        c.drawString(72, height - 120, "报销人应当在费用发生后三十日内提交单据。")
        if n == 2:
            table = Table(TABLE, colWidths=[120, 120, 120])
            table.setStyle(
                TableStyle([("FONT", (0, 0), (-1, -1), font, 11), ("GRID", (0, 0), (-1, -1), 0.8, "black")])
            )
            _, h = table.wrapOn(c, width, height)
            table.drawOn(c, 72, height - 160 - h)
            c.drawString(72, height - 200 - h, "表格之后的段落说明审批顺序。")
        c.setFont(font, 9)
        c.drawCentredString(width / 2, 30, f"- {n} -")
        c.showPage()
    c.save()
    return path


@pytest.fixture(scope="module")
def broker(corpus_dir: Path):
    return parse_file(corpus_dir / "pdf" / "broker-report-text-layer.pdf", IngestConfig())


@pytest.fixture(scope="module")
def manual(tmp_path_factory: pytest.TempPathFactory):
    path = make_manual(tmp_path_factory.mktemp("pdf") / "finance-manual.pdf")
    return parse_file(path, IngestConfig())


def test_broker_report_pages_title_and_hash(broker, corpus_dir: Path) -> None:
    import hashlib

    path = corpus_dir / "pdf" / "broker-report-text-layer.pdf"
    assert [p.number for p in broker.pages] == [1, 2, 3, 4]
    assert broker.kind == "pdf" and broker.ocr_pages == 0
    # The metadata title is the output file name; its ".pdf" is not part of the title.
    assert broker.title.startswith("德邦证券-高测股份(688556)") and not broker.title.endswith(".pdf")
    assert broker.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_broker_report_keeps_columns_apart(broker) -> None:
    texts = [line.text for line in broker.pages[0].lines]
    joined = "\n".join(texts)
    assert "投资要点" in joined and "研究助理" in joined
    # The sidebar ("研究助理") and the main column sit at the same height; they must not be spliced.
    assert not any("研究助理" in t and "亿元" in t for t in texts)
    assert all(0.0 <= line.top <= 1.0 for p in broker.pages for line in p.lines)


def test_layout_frame_is_not_a_table_but_data_table_is(broker) -> None:
    # Page 1 is drawn as one big mostly-empty ruled frame: its text must stay text.
    assert broker.pages[0].tables == []
    assert sum(len(line.text) for line in broker.pages[0].lines) > 1500
    rating = [t for t in broker.pages[3].tables if any("股票投资评级" in c for row in t.rows for c in row)]
    assert len(rating) == 1
    assert rating[0].page == 4 and 0 < rating[0].top < rating[0].bottom < 1
    # Text inside the table is not duplicated as a text line.
    assert not any("股票投资评级" in line.text for line in broker.pages[3].lines)


def test_manual_table_rows_and_reading_order(manual) -> None:
    page = manual.pages[1]
    tables = page.tables
    assert len(tables) == 1 and tables[0].rows == TABLE
    texts = [i.text if isinstance(i, Line) else "<table>" for i in page.items]
    before = next(i for i, t in enumerate(texts) if t.startswith("报销人应当"))
    after = next(i for i, t in enumerate(texts) if t.startswith("表格之后"))
    assert before < texts.index("<table>") < after
    assert not any("财务总监" in t for t in texts if t != "<table>")


def test_manual_header_and_footer_positions(manual) -> None:
    assert len(manual.pages) == 3 and all(not p.ocr for p in manual.pages)
    for page in manual.pages:
        header = next(line for line in page.lines if line.text == HEADER)
        footer = next(line for line in page.lines if line.text == f"- {page.number} -")
        assert header.top < 0.1 and footer.top > 0.9
        tops = [i.top for i in page.items if isinstance(i, Line | RawTable)]
        assert tops == sorted(tops)


@pytest.mark.parametrize(
    ("meta", "expected"),
    [("Microsoft Word - 资金管理办法.docx", "资金管理办法"), ("untitled", "报销制度"), ("", "报销制度")],
)
def test_metadata_title_is_sanity_checked(tmp_path: Path, meta: str, expected: str) -> None:
    path = make_manual(tmp_path / "报销制度(2024-01-31).pdf", pages=1, title=meta)
    assert parse_file(path, IngestConfig()).title == expected


def test_page_limit_names_file_and_count(corpus_dir: Path) -> None:
    path = corpus_dir / "pdf" / "broker-report-text-layer.pdf"
    with pytest.raises(IngestError) as err:
        parse_file(path, IngestConfig(limits=LimitsConfig(max_pages=3)))
    assert "broker-report-text-layer.pdf" in str(err.value) and "4 pages (limit 3)" in str(err.value)


def test_file_size_limit(corpus_dir: Path) -> None:
    path = corpus_dir / "pdf" / "broker-report-text-layer.pdf"
    with pytest.raises(
        IngestError, match=r"broker-report-text-layer\.pdf: file is 801\.1 KB \(limit 100 KB\)"
    ):
        parse_file(path, IngestConfig(limits=LimitsConfig(max_file_bytes=100 * 1024)))
