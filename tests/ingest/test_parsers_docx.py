"""DOCX parsing on the corpus demo file and on documents built here with python-docx."""

from __future__ import annotations

from pathlib import Path

import docx
import pytest
from docx.enum.style import WD_STYLE_TYPE

from ingest.config import IngestConfig
from ingest.parsers import parse_file
from ingest.types import Line, RawTable


@pytest.fixture(scope="module")
def mixed(corpus_dir: Path):
    return parse_file(corpus_dir / "docx" / "mixed-tables.docx", IngestConfig())


def _texts(doc) -> list[str]:
    return [i.text for i in doc.pages[0].items if isinstance(i, Line)]


def test_one_page_with_eight_tables(mixed) -> None:
    assert mixed.kind == "docx" and [p.number for p in mixed.pages] == [1]
    tables = mixed.pages[0].tables
    assert len(tables) == 8
    assert tables[0].rows[0] == ["Column A", "Column B"]
    food = next(t for t in tables if "Food" in t.rows[0])
    assert food.rows[1] == ["Leaves", "Ash, Elm, Maple", "50"]
    assert all(len(set(map(len, t.rows))) == 1 for t in tables)  # rectangular grids


def test_headings_and_title(mixed) -> None:
    headings = {(i.text, i.heading_level) for i in mixed.pages[0].lines if i.heading_level}
    assert ("1 这是第一章标题", 1) in headings
    assert ("Many Tables", 2) in headings
    assert ("Table with rich cells", 3) in headings
    # A numbered paragraph made a heading by its outline level, not its style.
    assert ("有序列表构成的章节标题", 1) in headings
    assert mixed.title == "MinerU supports DOCX document parsing now"


def test_tables_stay_between_their_paragraphs(mixed) -> None:
    items = mixed.pages[0].items
    marks = [i.text if isinstance(i, Line) else "<table>" for i in items]
    before = marks.index("Before table")
    assert marks[before + 1] == "<table>"
    assert marks[before + 2].startswith("After table")


def test_merged_cells_appear_once(mixed) -> None:
    complex_table = next(t for t in mixed.pages[0].tables if t.rows[0][0] == "主申请人-基本情况")
    assert len(complex_table.rows[0]) == 25
    assert complex_table.rows[0][1:] == [""] * 24
    assert sum(row.count("主申请人-基本情况") for row in complex_table.rows) == 1


def test_nested_tables_and_content_controls_keep_text(mixed) -> None:
    items = mixed.pages[0].items
    nested = items[
        next(i for i, item in enumerate(items) if getattr(item, "text", None) == "Before table") + 1
    ]
    assert "Cell 1 Cell 2 Cell 3" in nested.rows[2][1]
    texts = _texts(mixed)
    assert any("无税固定总价￥125000" in t for t in texts)  # inline w:sdt content


def test_toc_headers_and_footers_are_not_read(mixed) -> None:
    joined = "\n".join(_texts(mixed))
    assert "目 录" not in joined
    assert "这是带公式的页眉" not in joined and "github主页" not in joined
    # Each heading appears once (the table of contents would repeat it).
    assert _texts(mixed).count("1 这是第一章标题") == 1


def test_chinese_styles_merges_and_core_title(tmp_path: Path) -> None:
    document = docx.Document()
    document.core_properties.title = "资金管理办法"
    document.styles.add_style("标题 1", WD_STYLE_TYPE.PARAGRAPH)
    document.add_paragraph("第一章 总则", style="标题 1")
    document.add_paragraph("第一条 为规范资金管理，制定本办法。")
    document.sections[0].header.paragraphs[0].text = "内部资料 注意保密"
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([["类别", "项目", "限额"], ["费用", "差旅", "5"], ["", "招待", "2"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    table.cell(1, 0).merge(table.cell(2, 0))  # vertical merge: 费用 covers two rows
    table.cell(0, 1).merge(table.cell(0, 2))  # horizontal merge across the header
    document.add_paragraph("第二条 以上限额每年复核。")
    path = tmp_path / "资金管理办法(2024-05-01).docx"
    document.save(str(path))

    doc = parse_file(path, IngestConfig())
    items = doc.pages[0].items
    assert items[0] == Line(text="第一章 总则", heading_level=1)
    assert items[1] == Line(text="第一条 为规范资金管理，制定本办法。")
    assert isinstance(items[2], RawTable)
    # python-docx's merge joins the merged cells' paragraphs; the covered grid positions are empty.
    assert items[2].rows == [["类别", "项目\n限额", ""], ["费用", "差旅", "5"], ["", "招待", "2"]]
    assert items[3].text == "第二条 以上限额每年复核。"
    assert "内部资料" not in "".join(i.text for i in items if isinstance(i, Line))
    # "标题 1" is a heading, but the explicit Title style is absent: the first level-1 heading wins
    # over the core properties.
    assert doc.title == "第一章 总则"


def test_title_falls_back_to_core_properties_then_stem(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("正文一段。")
    document.core_properties.title = "报销制度"
    document.save(str(tmp_path / "a.docx"))
    assert parse_file(tmp_path / "a.docx", IngestConfig()).title == "报销制度"
    document.core_properties.title = ""
    document.save(str(tmp_path / "费用报销细则(2023-12-01).docx"))
    assert parse_file(tmp_path / "费用报销细则(2023-12-01).docx", IngestConfig()).title == "费用报销细则"
