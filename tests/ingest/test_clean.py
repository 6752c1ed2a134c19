"""Cleaning rules on hand-built documents: each test isolates one rule (fast, no files)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.clean import clean_document
from ingest.cleaning.joining import join_two
from ingest.cleaning.marks import ends_sentence, heading_mark
from ingest.cleaning.pagenum import is_page_number
from ingest.config import CleanConfig
from ingest.types import Block, CleanDocument, Line, Page, ParsedDocument, RawTable

CONFIG = CleanConfig()
HEADER = "XX集团 内部资料 严禁外传"
BODY_TOP = 0.15
STEP = 0.03


def _pdf_page(
    number: int, body: list[str | RawTable], *, header: str | None = None, footer: str | None = None
) -> Page:
    """A positioned page: optional header in the top band, body lines, optional footer at the bottom."""
    items: list[Line | RawTable] = []
    if header is not None:
        items.append(Line(header, top=0.04))
    top = BODY_TOP
    for entry in body:
        if isinstance(entry, RawTable):
            entry.page = number
            items.append(entry)
            top += STEP * (len(entry.rows) + 1)
        else:
            items.append(Line(entry, top=top))
            top += STEP
    if footer is not None:
        items.append(Line(footer, top=0.95))
    return Page(number, items)


def _doc(pages: list[Page], kind: str = "pdf") -> ParsedDocument:
    return ParsedDocument(Path(f"doc.{kind}"), kind, "测试文档", pages, "0" * 64)  # type: ignore[arg-type]


def _flowing(lines: list[Line | RawTable], kind: str = "md") -> ParsedDocument:
    return _doc([Page(1, lines)], kind)


def _clean(doc: ParsedDocument, config: CleanConfig = CONFIG) -> CleanDocument:
    return clean_document(doc, config)


def _all_text(doc: CleanDocument) -> str:
    parts = [b.text for b in doc.blocks]
    parts += [cell for b in doc.blocks if b.table for row in b.table.rows for cell in row]
    return "\n".join(parts)


def _paragraphs(doc: CleanDocument) -> list[str]:
    return [b.text for b in doc.blocks if b.kind == "paragraph"]


# --- running headers and footers ---------------------------------------------------------------


def test_running_header_and_numbered_footer_are_removed_from_every_page() -> None:
    pages = [
        _pdf_page(n, [f"第{n}条 本页正文内容第{n}段。"], header=HEADER, footer=f"第 {n} 页 共 6 页")
        for n in range(1, 7)
    ]
    pages[3].items[0].text = "XX集团  内部资料 严禁外传 "  # spacing differs on one page
    cleaned = _clean(_doc(pages))
    text = _all_text(cleaned)
    assert "内部资料" not in text and "共 6 页" not in text
    assert _paragraphs(cleaned) == [f"第{n}条 本页正文内容第{n}段。" for n in range(1, 7)]
    assert cleaned.removed_lines == 12


def test_fuzzy_variants_of_a_header_cluster_together() -> None:
    variants = [HEADER, HEADER, "XX集团 内部资料 严禁外传。", "XX集团 内部资科 严禁外传", HEADER]  # OCR slips
    pages = [_pdf_page(n, [f"第{n}条 正文。"], header=h) for n, h in enumerate(variants, start=1)]
    assert "XX集团" not in _all_text(_clean(_doc(pages)))


def test_alternating_odd_and_even_headers_are_both_removed() -> None:
    pages = [
        _pdf_page(n, [f"第{n}条 正文第{n}页。"], header="企业会计准则讲解" if n % 2 else "第三章 收入的确认")
        for n in range(1, 9)
    ]
    cleaned = _clean(_doc(pages))
    assert [b.kind for b in cleaned.blocks] == ["paragraph"] * 8
    assert "讲解" not in _all_text(cleaned) and "收入的确认" not in _all_text(cleaned)


def test_a_band_line_on_too_few_pages_is_kept() -> None:
    pages = [
        _pdf_page(n, [f"第{n}条 正文。"], header="附件一" if n in (1, 2) else None) for n in range(1, 11)
    ]
    cleaned = _clean(_doc(pages))
    assert cleaned.blocks[0].text == "附件一"
    assert sum(b.text == "附件一" for b in cleaned.blocks) == 2


def test_short_documents_keep_their_first_lines() -> None:
    pages = [_pdf_page(n, [f"第{n}条 正文。"], header="费用报销管理办法") for n in (1, 2)]
    assert [b.text for b in _clean(_doc(pages)).blocks] == [
        "费用报销管理办法",
        "第1条 正文。",
        "费用报销管理办法",
        "第2条 正文。",
    ]


def test_repeated_body_lines_are_not_headers() -> None:
    pages = [_pdf_page(n, ["单位：元", f"第{n}条 正文。"]) for n in range(1, 6)]
    assert sum(b.text == "单位：元" for b in _clean(_doc(pages)).blocks) == 5


def test_flowing_documents_have_no_running_headers() -> None:
    lines = [Line("公司简介")] + [Line(f"第{n}条 内容。") for n in range(1, 4)] + [Line("公司简介")]
    cleaned = _clean(_flowing(lines, "docx"))
    assert sum(b.text == "公司简介" for b in cleaned.blocks) == 2


# --- page numbers -----------------------------------------------------------------------------

PAGE_NUMBER_FORMS = [
    "第 3 页",
    "第3页 共20页",
    "第 3 页，共 20 页",
    "- 3 -",
    "— 3 —",
    "3/20",
    "3 / 20",
    "Page 3 of 20",
    "3",
    "xiv",
    "IV",
]


@pytest.mark.parametrize("form", PAGE_NUMBER_FORMS)
def test_page_number_forms(form: str) -> None:
    assert is_page_number(form)


@pytest.mark.parametrize("text", ["第3条", "见第3页", "2024年", "12345", "3.5", "（一）", "mix", "Civil", ""])
def test_not_page_numbers(text: str) -> None:
    assert not is_page_number(text)


@pytest.mark.parametrize("form", PAGE_NUMBER_FORMS)
def test_page_number_alone_in_the_footer_band_is_removed(form: str) -> None:
    pages = [_pdf_page(1, ["第一条 正文。"], footer=form), _pdf_page(2, ["第二条 正文。"])]
    cleaned = _clean(_doc(pages))
    assert _paragraphs(cleaned) == ["第一条 正文。", "第二条 正文。"]
    assert cleaned.removed_lines == 1


def test_page_number_in_the_body_is_content() -> None:
    page = _pdf_page(1, ["第一条 详见下表：", "3", "第二条 其他。"])
    page.items.append(Line("- 1 -", top=0.96))
    cleaned = _clean(_doc([page]))
    assert [b.text for b in cleaned.blocks] == ["第一条 详见下表：", "3", "第二条 其他。"]


def test_flowing_page_numbers_only_at_the_page_edges() -> None:
    lines = [Line("- 1 -"), Line("第一条 正文。"), Line("2"), Line("第二条 正文。"), Line("Page 1 of 9")]
    cleaned = _clean(_flowing(lines, "txt"))
    assert [b.text for b in cleaned.blocks] == ["第一条 正文。", "2", "第二条 正文。"]


# --- blank pages ----------------------------------------------------------------------------------


def test_page_with_only_furniture_is_blank_and_emits_nothing() -> None:
    pages = [_pdf_page(n, [f"第{n}条 正文第{n}页。"], header=HEADER, footer=f"- {n} -") for n in range(1, 6)]
    pages.insert(2, _pdf_page(3, ["（此页无正文）"[:1]], header=HEADER, footer="- 3 -"))
    for n, page in enumerate(pages, start=1):
        page.number = n
    cleaned = _clean(_doc(pages))
    assert cleaned.blank_pages == [3]
    assert all(b.page != 3 for b in cleaned.blocks)
    assert len(cleaned.blocks) == 5


def test_page_holding_only_a_table_is_not_blank() -> None:
    table = RawTable(rows=[["项目", "金额"], ["A", "1"]], page=2)
    pages = [_pdf_page(1, ["第一条 正文。"]), _pdf_page(2, [table])]
    cleaned = _clean(_doc(pages))
    assert cleaned.blank_pages == []
    assert [b.kind for b in cleaned.blocks] == ["paragraph", "table"]


def test_punctuation_only_page_is_blank() -> None:
    pages = [_pdf_page(1, ["第一条 正文。"]), _pdf_page(2, ["……", "— —"])]
    cleaned = _clean(_doc(pages))
    assert cleaned.blank_pages == [2]
    assert cleaned.removed_lines == 2


# --- markup debris ------------------------------------------------------------------------------


def test_markdown_and_html_debris_is_stripped_and_text_kept() -> None:
    lines = [
        Line("# 企业会计准则第4号——固定资产"),
        Line("==================="),
        Line("财会\\[2006\\]3号"),
        Line(""),
        Line("**第一章** **总则**"),
        Line(""),
        Line("<!-- INFO END -->"),
        Line("第一条 为了规范<span style='color:red'>固定资产</span>的确认、计量和相关信息的披露。"),
        Line(""),
        Line("1\\. 对于首次执行日前的融资租赁，按原账面价值计量。"),
        Line(""),
        Line("第二条 参见&nbsp;[财政部网站](https://www.mof.gov.cn)。<br>第三条 新条款。"),
        Line(""),
        Line("![](190.jpg)"),
        Line('根据《关于修改<中华人民共和国建筑法>的决定》修正。<a name="_Toc1"></a>'),
    ]
    cleaned = _clean(_flowing(lines))
    assert [(b.kind, b.level, b.text) for b in cleaned.blocks] == [
        ("heading", 1, "企业会计准则第4号——固定资产"),
        ("paragraph", None, "财会[2006]3号"),
        ("heading", None, "第一章 总则"),
        ("paragraph", None, "第一条 为了规范固定资产的确认、计量和相关信息的披露。"),
        ("paragraph", None, "1. 对于首次执行日前的融资租赁，按原账面价值计量。"),
        ("paragraph", None, "第二条 参见财政部网站。"),
        ("paragraph", None, "第三条 新条款。"),
        ("paragraph", None, "根据《关于修改<中华人民共和国建筑法>的决定》修正。"),
    ]
    assert cleaned.removed_lines == 3  # the setext underline, the comment, the image


def test_markdown_heading_levels_become_block_levels() -> None:
    lines = [
        Line("# 中华人民共和国会计法"),
        Line("## 第一章 总 则"),
        Line("### 第一节 一般规定", heading_level=None),
    ]
    cleaned = _clean(_flowing(lines))
    assert [(b.kind, b.level, b.text) for b in cleaned.blocks] == [
        ("heading", 1, "中华人民共和国会计法"),
        ("heading", 2, "第一章 总则"),
        ("heading", 3, "第一节 一般规定"),
    ]


def test_parser_heading_level_is_kept() -> None:
    cleaned = _clean(_flowing([Line("总则", heading_level=2), Line("第一条 内容。")], "docx"))
    assert cleaned.blocks[0] == Block(kind="heading", text="总则", page=1, page_end=1, level=2)


def test_symbol_font_bullets_and_zero_width_characters_are_dropped() -> None:
    cleaned = _clean(_doc([_pdf_page(1, ["\uf06c 风险提示：\u200b市场竞争加剧。"])]))
    assert cleaned.blocks[0].text == "风险提示：市场竞争加剧。"


def test_backslash_and_stars_stay_literal_in_pdf_text() -> None:
    cleaned = _clean(_doc([_pdf_page(1, ["公式为 a**2 + b\\[c\\]。"])]))
    assert cleaned.blocks[0].text == "公式为 a**2 + b\\[c\\]。"


def test_debris_in_table_cells_is_stripped() -> None:
    table = RawTable(rows=[["**项目**", "金额&nbsp;(元)"], ["<b>收入</b>", "1,000"]], page=1)
    cleaned = _clean(_flowing([Line("第一条 见下表："), table]))
    assert cleaned.blocks[1].table is not None
    assert cleaned.blocks[1].table.rows == [["项目", "金额 (元)"], ["收入", "1,000"]]


def test_spaces_between_chinese_characters_are_closed() -> None:
    cleaned = _clean(_flowing([Line("第八条 应当将该合同变 更部分，                企业 会 计处理。")]))
    assert cleaned.blocks[0].text == "第八条 应当将该合同变更部分，企业会计处理。"


# --- joining lines into paragraphs --------------------------------------------------------------


def test_chinese_lines_join_without_space_until_the_sentence_ends() -> None:
    page = _pdf_page(
        1,
        [
            "第一条 为了规范企业费用报销行为，加强内部控",
            "制，根据国家有关规定，制定本办",
            "法。",
            "第二条 本办法适用于集团各单位。",
        ],
    )
    cleaned = _clean(_doc([page]))
    assert _paragraphs(cleaned) == [
        "第一条 为了规范企业费用报销行为，加强内部控制，根据国家有关规定，制定本办法。",
        "第二条 本办法适用于集团各单位。",
    ]


def test_latin_lines_join_with_a_space_and_hyphenation_is_undone() -> None:
    page = _pdf_page(
        1,
        [
            "The entity shall recognise",
            "revenue when control is trans-",
            "ferred to the customer. IFRS",
            "15 applies.",
        ],
    )
    assert _paragraphs(_clean(_doc([page]))) == [
        "The entity shall recognise revenue when control is transferred to the customer. IFRS 15 applies."
    ]


@pytest.mark.parametrize(
    ("left", "right", "joined"),
    [
        ("金额为1,000,", "000元", "金额为1,000,000元"),
        ("依据IFRS", "15号准则", "依据IFRS 15号准则"),
        ("well-", "Known", "well- Known"),
        ("第五条", "企业应当", "第五条 企业应当"),
    ],
)
def test_join_two(left: str, right: str, joined: str) -> None:
    assert join_two(left, right) == joined


@pytest.mark.parametrize(
    "text", ["结束。", "问题？", "如下：", "下列各项；", "称为“商品”。", "“结束。”", "Done.", "等等……"]
)
def test_sentence_ends(text: str) -> None:
    assert ends_sentence(text)


@pytest.mark.parametrize("text", ["（以下简称“商品”）", "应当按照", "《企业会计准则》", "第2号——"])
def test_sentence_goes_on(text: str) -> None:
    assert not ends_sentence(text)


@pytest.mark.parametrize(
    "marker_line",
    [
        "第五条 企业应当",
        "（一）合同各方",
        "(二)该合同",
        "一、总体要求",
        "1. 对于首次",
        "2、计量",
        "（1）属于",
        "(3)其他",
        "①甲公司",
        "第三章 收入",
        "第二节 计量",
    ],
)
def test_structural_lines_start_a_new_block_even_mid_sentence(marker_line: str) -> None:
    # The first clause ends without punctuation, so only the marker can separate the blocks.
    page = _pdf_page(
        1,
        [
            "第四条 企业应当在履行了合同中的履约义务时确认收入，具体包括下列",
            marker_line + "……",
            "第九条 其他。",
        ],
    )
    texts = [b.text for b in _clean(_doc([page])).blocks]
    assert texts[0] == "第四条 企业应当在履行了合同中的履约义务时确认收入，具体包括下列"
    assert texts[1].startswith(heading_mark(marker_line).text if heading_mark(marker_line) else marker_line)


def test_chapter_and_section_lines_become_heading_blocks() -> None:
    page = _pdf_page(1, ["第一章 总 则", "第一条 目的。", "第一节 一般规定", "第二条 范围。"])
    cleaned = _clean(_doc([page]))
    assert [(b.kind, b.text) for b in cleaned.blocks] == [
        ("heading", "第一章 总则"),
        ("paragraph", "第一条 目的。"),
        ("heading", "第一节 一般规定"),
        ("paragraph", "第二条 范围。"),
    ]


def test_clause_reference_at_a_line_start_continues_the_sentence() -> None:
    page = _pdf_page(
        1,
        [
            "第五条 企业应当披露。",
            "第六条 在合同开始日不符合本准则",
            "第五条规定的合同，企业应当对其进行持续评",
            "估。",
            "第七条 其他。",
        ],
    )
    assert _paragraphs(_clean(_doc([page]))) == [
        "第五条 企业应当披露。",
        "第六条 在合同开始日不符合本准则第五条规定的合同，企业应当对其进行持续评估。",
        "第七条 其他。",
    ]


def test_chapter_reference_at_a_line_start_is_not_a_heading() -> None:
    page = _pdf_page(1, ["第一章 总则", "第一条 本办法未尽事宜，依照本法", "第三章规定执行", "第二条 其他。"])
    cleaned = _clean(_doc([page]))
    assert [b.kind for b in cleaned.blocks] == ["heading", "paragraph", "paragraph"]
    assert cleaned.blocks[1].text == "第一条 本办法未尽事宜，依照本法第三章规定执行"


def test_clause_number_alone_joins_its_text_with_a_space() -> None:
    page = _pdf_page(1, ["第十条", "企业应当定期盘点。"])
    assert _paragraphs(_clean(_doc([page]))) == ["第十条 企业应当定期盘点。"]


def test_paragraph_continues_over_a_page_break() -> None:
    pages = [
        _pdf_page(
            1,
            [
                "第一条 本办法所称费用，是指员工因公发生的差旅费、会议费、培训",
                "费和业务招待费等各项支出，应当",
            ],
            header=HEADER,
            footer="第 1 页 共 3 页",
        ),
        _pdf_page(2, ["按照本办法的规定报销。", "第二条 其他。"], header=HEADER, footer="第 2 页 共 3 页"),
        _pdf_page(3, ["第三条 附则。"], header=HEADER, footer="第 3 页 共 3 页"),
    ]
    cleaned = _clean(_doc(pages))
    first = cleaned.blocks[0]
    assert (
        first.text
        == "第一条 本办法所称费用，是指员工因公发生的差旅费、会议费、培训费和业务招待费等各项支出，应当按照本办法的规定报销。"
    )
    assert (first.page, first.page_end) == (1, 2)
    assert [(b.page, b.page_end) for b in cleaned.blocks[1:]] == [(2, 2), (3, 3)]


def test_a_table_breaks_the_paragraph() -> None:
    table = RawTable(rows=[["项目", "标准"], ["住宿", "500"]], page=1)
    cleaned = _clean(_doc([_pdf_page(1, ["差旅费标准如下", table, "超出部分自理。"])]))
    assert [(b.kind, b.text) for b in cleaned.blocks] == [
        ("paragraph", "差旅费标准如下"),
        ("table", "项目 | 标准\n住宿 | 500"),
        ("paragraph", "超出部分自理。"),
    ]


def test_blank_line_in_markdown_ends_a_paragraph() -> None:
    lines = [
        Line("表2        金额单位：元"),
        Line(""),
        Line("年度        预计成本"),
        Line("2×18        6000"),
    ]
    cleaned = _clean(_flowing(lines))
    assert _paragraphs(cleaned) == ["表2 金额单位：元", "年度 预计成本2×18 6000"]


def test_short_line_without_punctuation_ends_its_paragraph() -> None:
    body = ["费用报销管理办法"] + ["第一条 为了规范企业费用报销行为，加强内部控制，根据国家有关规定"] * 9
    cleaned = _clean(_doc([_pdf_page(1, body)]))
    assert cleaned.blocks[0].text == "费用报销管理办法"


def test_vertical_gap_ends_a_paragraph() -> None:
    page = Page(
        1,
        [
            Line("这是一个没有标点结尾的段落行", top=0.20),
            Line("紧接着的续行同样很长没有标点", top=0.23),
            Line("隔了一大段空白的新段落内容行", top=0.40),
            Line("新段落的第二行也很长没有标点", top=0.43),
        ],
    )
    assert _paragraphs(_clean(_doc([page]))) == [
        "这是一个没有标点结尾的段落行紧接着的续行同样很长没有标点",
        "隔了一大段空白的新段落内容行新段落的第二行也很长没有标点",
    ]


def test_docx_paragraphs_are_never_joined_but_soft_breaks_are() -> None:
    lines = [Line("费用报销管理办法"), Line("为了规范报销行为\n制定本办法。"), Line("适用范围")]
    cleaned = _clean(_flowing(lines, "docx"))
    assert [b.text for b in cleaned.blocks] == [
        "费用报销管理办法",
        "为了规范报销行为制定本办法。",
        "适用范围",
    ]


# --- tables split over a page break -------------------------------------------------------------


def _split_table_pages(second_rows: list[list[str]], caption: str | None = None) -> list[Page]:
    first = RawTable(
        rows=[["项目", "金额", "备注"], ["差旅费", "1,000", "国内"], ["会议费", "2,000", ""]], page=1
    )
    second = RawTable(rows=second_rows, page=2, caption=caption)
    return [
        _pdf_page(1, ["第一条 费用明细见下表：", first], header=HEADER, footer="- 1 -"),
        _pdf_page(2, [second, "第二条 其他。"], header=HEADER, footer="- 2 -"),
        _pdf_page(3, ["第三条 附则。"], header=HEADER, footer="- 3 -"),
    ]


def test_split_table_with_repeated_header_becomes_one_table() -> None:
    cleaned = _clean(_doc(_split_table_pages([["项目", "金额", "备注"], ["培训费", "3,000", "外部"]])))
    tables = [b for b in cleaned.blocks if b.kind == "table"]
    assert len(tables) == 1
    assert tables[0].table is not None
    assert tables[0].table.rows == [
        ["项目", "金额", "备注"],
        ["差旅费", "1,000", "国内"],
        ["会议费", "2,000", ""],
        ["培训费", "3,000", "外部"],
    ]
    assert (tables[0].page, tables[0].page_end, tables[0].table.page) == (1, 2, 1)


def test_split_table_without_header_becomes_one_table() -> None:
    cleaned = _clean(_doc(_split_table_pages([["培训费", "3,000", "外部"], ["招待费", "500", ""]])))
    tables = [b.table for b in cleaned.blocks if b.table]
    assert len(tables) == 1 and len(tables[0].rows) == 5


def test_tables_with_different_columns_stay_apart() -> None:
    cleaned = _clean(_doc(_split_table_pages([["部门", "人数"], ["财务部", "12"]])))
    assert sum(b.kind == "table" for b in cleaned.blocks) == 2


def test_captioned_table_on_the_next_page_is_a_new_table() -> None:
    cleaned = _clean(_doc(_split_table_pages([["A", "B", "C"]], caption="表2 其他费用")))
    assert sum(b.kind == "table" for b in cleaned.blocks) == 2


def test_table_over_three_pages_merges_once() -> None:
    rows = [["项目", "金额"]]
    pages = [
        _pdf_page(1, ["第一条 明细：", RawTable(rows=rows + [["a", "1"]], page=1)]),
        _pdf_page(2, [RawTable(rows=rows + [["b", "2"]], page=2)]),
        _pdf_page(3, [RawTable(rows=[["c", "3"]], page=3), "第二条 完。"]),
    ]
    cleaned = _clean(_doc(pages))
    tables = [b for b in cleaned.blocks if b.kind == "table"]
    assert len(tables) == 1 and tables[0].table is not None
    assert tables[0].table.rows == [["项目", "金额"], ["a", "1"], ["b", "2"], ["c", "3"]]
    assert (tables[0].page, tables[0].page_end) == (1, 3)


def test_document_fields_are_carried_over() -> None:
    doc = _doc([_pdf_page(1, ["第一条 正文。"])])
    doc.warnings.append("parser warning")
    cleaned = _clean(doc)
    assert (cleaned.title, cleaned.kind, cleaned.sha256, cleaned.pages, cleaned.redactions) == (
        "测试文档",
        "pdf",
        "0" * 64,
        1,
        {},
    )
    assert cleaned.warnings == ["parser warning"]


# --- end to end: rendered PDF and the real Markdown corpus --------------------------------------

FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
PDF_PAGES = 9
TABLE_HEADER = ["职级", "一线城市（元/晚）", "其他城市（元/晚）"]
TABLE_ROWS_PAGE5 = [
    ["集团领导", "1200", "900"],
    ["总监", "800", "600"],
    ["经理", "600", "450"],
    ["主管", "500", "400"],
]
TABLE_ROWS_PAGE6 = [["专员", "450", "350"], ["助理", "400", "300"], ["实习生", "300", "200"]]
PDF_BODY: dict[int, list[str]] = {
    1: [
        "XX集团费用报销管理办法",
        "第一章 总则",
        "第一条 为了规范集团费用报销行为，加强内部控制和预算管理，",
        "根据国家有关法律法规，结合集团实际情况，制定本办法。",
        "第二条 本办法适用于集团总部及各分公司、子公司的全体员工。",
    ],
    2: [
        "第三条 财务部负责费用报销的审核，审计部负责监督检查。",
        "第四条 员工因公出差发生的交通费、住宿费、伙食补助费和其",
        "他杂费，应当在出差结束后十五个工作日内填写费用报销单，",
    ],
    3: [
        "并附原始票据，经部门负责人审批后交财务部审核报销。",
        "第五条 报销单据应当真实、合法、完整，不得虚报冒领。",
    ],
    4: [],
    5: ["第二章 报销标准", "第六条 住宿费按职级和城市执行下列标准："],
    6: ["第七条 超出标准部分由个人承担，特殊情况需经总经理批准。"],
    7: ["第三章 附则", "第八条 本办法由集团财务部负责解释。"],
    8: ["第九条 各分公司可以根据本办法制定实施细则，报集团备案。"],
    9: ["第十条 本办法自发布之日起施行。"],
}


def _render_pdf(path: Path) -> None:
    """Draw the test manual: header and footer on every page, a blank page 4, a paragraph
    broken over pages 2-3 and a ruled table that runs from page 5 onto page 6."""
    reportlab = pytest.importorskip("reportlab")
    del reportlab
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas
    from reportlab.platypus import Table, TableStyle

    if not FONT_PATH.exists():
        pytest.skip(f"Chinese font missing at {FONT_PATH} (apt-get install fonts-wqy-microhei)")
    pdfmetrics.registerFont(TTFont("wqy", str(FONT_PATH), subfontIndex=0))
    width, height = A4
    pdf = canvas.Canvas(str(path), pagesize=A4)
    style = TableStyle([("FONT", (0, 0), (-1, -1), "wqy", 11), ("GRID", (0, 0), (-1, -1), 0.8, colors.black)])
    for number in range(1, PDF_PAGES + 1):
        pdf.setFont("wqy", 10)
        pdf.drawString(70, height - 30, HEADER)
        pdf.drawCentredString(width / 2, 28, f"第 {number} 页 共 {PDF_PAGES} 页")
        pdf.setFont("wqy", 12)
        y = height - 130
        if number == 6:  # the table goes on right below the header
            table = Table([TABLE_HEADER, *TABLE_ROWS_PAGE6], colWidths=[120, 150, 150])
            table.setStyle(style)
            _, table_height = table.wrapOn(pdf, width, height)
            y = height - 110
            table.drawOn(pdf, 70, y - table_height)
            y -= table_height + 30
        for text in PDF_BODY[number]:
            pdf.drawString(70, y, text)
            y -= 22
        if number == 5:  # the table ends the page
            table = Table([TABLE_HEADER, *TABLE_ROWS_PAGE5], colWidths=[120, 150, 150])
            table.setStyle(style)
            _, table_height = table.wrapOn(pdf, width, height)
            table.drawOn(pdf, 70, 120)
        pdf.showPage()
    pdf.save()


@pytest.fixture(scope="module")
def rendered_pdf(tmp_path_factory: pytest.TempPathFactory) -> CleanDocument:
    from ingest.parsers import parse_file

    path = tmp_path_factory.mktemp("clean") / "费用报销管理办法.pdf"
    _render_pdf(path)
    return clean_document(parse_file(path), CleanConfig())


def test_pdf_header_and_footer_survive_nowhere(rendered_pdf: CleanDocument) -> None:
    text = _all_text(rendered_pdf)
    for fragment in ("XX集团 内部资料", "内部资料", "严禁外传", "共 9 页", f"共 {PDF_PAGES} 页", "第 1 页"):
        assert fragment not in text
    assert rendered_pdf.removed_lines >= 2 * PDF_PAGES


def test_pdf_blank_page_is_reported(rendered_pdf: CleanDocument) -> None:
    assert rendered_pdf.blank_pages == [4]
    assert all(b.page != 4 for b in rendered_pdf.blocks)
    assert rendered_pdf.pages == PDF_PAGES


def test_pdf_paragraphs_are_joined_within_and_across_pages(rendered_pdf: CleanDocument) -> None:
    paragraphs = {b.text: b for b in rendered_pdf.blocks if b.kind == "paragraph"}
    first = "第一条 为了规范集团费用报销行为，加强内部控制和预算管理，根据国家有关法律法规，结合集团实际情况，制定本办法。"
    split = (
        "第四条 员工因公出差发生的交通费、住宿费、伙食补助费和其他杂费，应当在出差结束后十五个工作日内填写费用报销单，"
        "并附原始票据，经部门负责人审批后交财务部审核报销。"
    )
    assert first in paragraphs
    assert split in paragraphs
    assert (paragraphs[split].page, paragraphs[split].page_end) == (2, 3)
    clause_starts = [m.group(0) for b in rendered_pdf.blocks if (m := re.match(r"第.{1,2}条", b.text))]
    assert clause_starts == [
        "第一条",
        "第二条",
        "第三条",
        "第四条",
        "第五条",
        "第六条",
        "第七条",
        "第八条",
        "第九条",
        "第十条",
    ]
    headings = [b.text for b in rendered_pdf.blocks if b.kind == "heading"]
    assert headings == ["第一章 总则", "第二章 报销标准", "第三章 附则"]


def test_pdf_split_table_is_one_table_with_all_rows(rendered_pdf: CleanDocument) -> None:
    tables = [b for b in rendered_pdf.blocks if b.kind == "table"]
    assert len(tables) == 1
    table = tables[0].table
    assert table is not None
    assert table.rows == [TABLE_HEADER, *TABLE_ROWS_PAGE5, *TABLE_ROWS_PAGE6]
    assert (tables[0].page, tables[0].page_end) == (5, 6)
    kinds = [(b.kind, b.page) for b in rendered_pdf.blocks]
    assert kinds.index(("table", 5)) == kinds.index(("paragraph", 5)) + 1  # between 第六条 and 第七条


@pytest.fixture(scope="module")
def revenue_standard(corpus_dir: Path) -> tuple[list[str], CleanDocument]:
    from ingest.parsers import parse_file

    path = corpus_dir / "standards" / "企业会计准则第14号——收入（2017年修订）.md"
    return path.read_text(encoding="utf-8-sig").splitlines(), clean_document(parse_file(path), CleanConfig())


def test_markdown_corpus_has_no_debris_left(revenue_standard: tuple[list[str], CleanDocument]) -> None:
    _, cleaned = revenue_standard
    text = _all_text(cleaned)
    assert "**" not in text
    assert "\\[" not in text and "\\]" not in text
    assert not re.search(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>|<!--", text)
    assert "](http" not in text and "&nbsp;" not in text
    assert cleaned.blocks[0] == Block(
        kind="heading", text="企业会计准则第14号——收入（2017年修订）", page=1, page_end=1, level=1
    )


def test_markdown_corpus_every_clause_line_starts_a_block(
    revenue_standard: tuple[list[str], CleanDocument],
) -> None:
    source, cleaned = revenue_standard
    clause = re.compile(r"^第[一二三四五六七八九十百零]+条")
    expected = [m.group(0) for line in source if (m := clause.match(line.strip().replace("*", "")))]
    starts = [m.group(0) for b in cleaned.blocks if (m := clause.match(b.text))]
    assert len(expected) == 45
    assert starts == expected
    headings = [b.text for b in cleaned.blocks if b.kind == "heading"]
    assert headings[1:4] == ["第一章 总则", "第二章 确认", "第三章 计量"]
