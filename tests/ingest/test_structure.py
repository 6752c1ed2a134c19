"""build_tree: 章/节 sections, 条 clauses with 款/项 items, preamble, appendices, tables, fallback.

The corpus tests build CleanDocuments straight from the Markdown files with a minimal helper
(lines -> paragraphs, '#' and setext lines -> headings), so they test structuring alone; one
test at the end runs the real parser and cleaner in front of it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.config import ChunkConfig
from ingest.structure import build_tree, text_hash
from ingest.types import Block, CleanDocument, DocumentTree, RawTable
from zhtext import to_int

ARTICLE_DOCS = {
    "laws/会计法(2024-06-28).md": "会计法",
    "laws/建筑法(2019-04-23).md": "建筑法",
    "laws/招标投标法(2017-12-27).md": "招标投标法",
    "laws/增值税暂行条例(2017-11-19).md": "增值税暂行条例",
    "laws/发票管理办法(2023-07-20).md": "发票管理办法",
    "laws/保障农民工工资支付条例(2019-12-30).md": "保障农民工工资支付条例",
    "laws/最高人民法院关于审理建设工程施工合同纠纷案件适用法律问题的解释（一）(2020-12-29).md": (
        "最高人民法院关于审理建设工程施工合同纠纷案件适用法律问题的解释一"
    ),
    "standards/企业会计准则第1号——存货（2006）.md": "CAS-1-存货",
    "standards/企业会计准则第4号——固定资产（2006）.md": "CAS-4-固定资产",
    "standards/企业会计准则第14号——收入（2017年修订）.md": "CAS-14-收入",
    "standards/企业会计准则第21号——租赁（2018年修订）.md": "CAS-21-租赁",
}
GUIDE = "standards/《企业会计准则第14号——收入》应用指南（2018）.md"
NUM = "零〇一二两三四五六七八九十百千0-9"
SOURCE_ARTICLE = re.compile(rf"^[\s*]*第\s*([{NUM}][{NUM}\s]*)\s*条")
SOURCE_DIVISION = re.compile(rf"^[\s#*]*第\s*([{NUM}]+)\s*(章|节)")


def markdown_document(path: Path) -> CleanDocument:
    """The minimal stand-in for parser + cleaner: one block per non-blank line."""
    blocks: list[Block] = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        text = line.strip()
        if not text:
            continue
        if re.fullmatch(r"=+", text) and blocks:
            blocks[-1] = Block("heading", blocks[-1].text.strip(), 1, 1, level=1)
            continue
        heading = re.match(r"^(#+)\s*(.*)$", text)
        if heading:
            blocks.append(Block("heading", heading.group(2).strip(), 1, 1, level=len(heading.group(1))))
        else:
            blocks.append(Block("paragraph", line, 1, 1))
    return CleanDocument(path, "md", path.stem, "sha", 1, 0, blocks)


def para(text: str, page: int = 1, page_end: int | None = None) -> Block:
    return Block("paragraph", text, page, page_end or page)


def heading(text: str, level: int = 1, page: int = 1) -> Block:
    return Block("heading", text, page, page, level=level)


def table(rows: list[list[str]], page: int = 1, caption: str | None = None) -> Block:
    return Block("table", "", page, page, table=RawTable(rows=rows, page=page, caption=caption))


def document(blocks: list[Block], title: str = "某公司费用报销办法") -> CleanDocument:
    return CleanDocument(Path("manual.md"), "md", title, "sha", max(b.page_end for b in blocks), 0, blocks)


def compact(text: str) -> str:
    return re.sub(r"[\s*#]+", "", text)


@pytest.fixture(scope="module")
def corpus_trees(corpus_dir: Path) -> dict[str, tuple[CleanDocument, DocumentTree]]:
    trees = {}
    for name in [*ARTICLE_DOCS, GUIDE]:
        doc = markdown_document(corpus_dir / name)
        trees[name] = (doc, build_tree(doc, ChunkConfig()))
    return trees


# -- the real corpus ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ARTICLE_DOCS))
def test_every_source_article_is_one_clause_in_order(corpus_dir: Path, corpus_trees, name: str) -> None:
    _, tree = corpus_trees[name]
    lines = (corpus_dir / name).read_text(encoding="utf-8-sig").splitlines()
    expected = [re.sub(r"\s", "", m.group(1)) for line in lines if (m := SOURCE_ARTICLE.match(line))]
    articles = [c for c in tree.clauses if c.number.endswith("条")]
    assert len(expected) > 20
    assert [c.number for c in articles] == [f"第{n}条" for n in expected]
    assert [c.ordinal for c in articles] == [to_int(n) for n in expected]
    assert [c.ordinal for c in articles] == list(range(1, len(articles) + 1))
    assert [c.clause_id for c in articles] == [f"{ARTICLE_DOCS[name]}/第{n}条" for n in expected]
    assert tree.doc_id == ARTICLE_DOCS[name]
    assert len({c.clause_id for c in tree.clauses}) == len(tree.clauses)
    assert not tree.warnings
    for clause in articles:
        assert clause.text.startswith(clause.number[:1]) and clause.sha256 == text_hash(clause.text)
        assert clause.items and clause.items[0].marker == "第一款"


@pytest.mark.parametrize("name", list(ARTICLE_DOCS))
def test_articles_sit_in_their_chapter_and_section(corpus_dir: Path, corpus_trees, name: str) -> None:
    _, tree = corpus_trees[name]
    expected: dict[str, list[str]] = {}
    chapter: str | None = None
    section: str | None = None
    for line in (corpus_dir / name).read_text(encoding="utf-8-sig").splitlines():
        division = SOURCE_DIVISION.match(line)
        if division and len(compact(line)) < 30:
            number = f"第{division.group(1)}{division.group(2)}"
            chapter, section = (number, None) if division.group(2) == "章" else (chapter, number)
        elif m := SOURCE_ARTICLE.match(line):
            number = re.sub(r"\s", "", m.group(1))
            expected[f"第{number}条"] = [n for n in (chapter, section) if n]
    sections = {s.section_id: s for s in tree.sections}
    for clause in tree.clauses:
        if clause.number not in expected:
            continue
        chain = []
        node = sections[clause.section_id]
        while True:
            chain.insert(0, node.number)
            if node.parent_id is None:
                break
            node = sections[node.parent_id]
        assert chain == (expected[clause.number] or ["正文"]), clause.clause_id
    chapters = [s for s in tree.sections if s.number.endswith("章")]
    assert all(s.level == 1 and s.parent_id is None and s.title for s in chapters)
    assert all(s.level == 2 for s in tree.sections if s.number.endswith("节"))
    if "增值税" in name or "最高人民法院" in name:
        assert not chapters
    else:
        assert len(chapters) >= 4


def test_chapter_titles_lose_typesetting_spaces(corpus_trees) -> None:
    _, tree = corpus_trees["standards/企业会计准则第14号——收入（2017年修订）.md"]
    assert [(s.number, s.title) for s in tree.sections if s.number.endswith("章")][:2] == [
        ("第一章", "总则"),
        ("第二章", "确认"),
    ]
    _, tree = corpus_trees["laws/建筑法(2019-04-23).md"]
    first_section = next(s for s in tree.sections if s.number == "第一节")
    assert (first_section.section_id, first_section.title) == ("建筑法#第二章/第一节", "建筑工程施工许可")


@pytest.mark.parametrize("name", [*ARTICLE_DOCS, GUIDE])
def test_no_text_is_lost(corpus_trees, name: str) -> None:
    """Every paragraph is in a clause, in order, unless it became a section heading or is the title."""
    doc, tree = corpus_trees[name]
    joined = "\n".join(c.text for c in tree.clauses)
    headings = {compact(s.number + s.title) for s in tree.sections}
    headings |= {compact(s.number.rstrip("、") + "、" + s.title) for s in tree.sections}
    cursor = 0
    for block in doc.blocks:
        text = block.text.strip()
        if block.kind != "paragraph" or compact(text) in headings or compact(text) == compact(doc.title):
            continue
        if "应用指南" in text and len(text) < 40:  # the guide's repeated title line
            continue
        found = joined.find(text, cursor)
        assert found >= 0, text
        cursor = found + len(text)


def test_preamble_of_a_law_is_a_clause_in_its_own_section(corpus_trees) -> None:
    _, tree = corpus_trees["laws/会计法(2024-06-28).md"]
    preamble = tree.clauses[0]
    assert (preamble.clause_id, preamble.number, preamble.ordinal) == ("会计法/序言", "序言", 0)
    assert preamble.text.startswith("1985年1月21日")
    assert preamble.section_id == "会计法#序言"
    assert [s.number for s in tree.sections[:2]] == ["序言", "第一章"]
    assert "中华人民共和国会计法" not in [s.title for s in tree.sections]
    _, tree = corpus_trees[
        "laws/最高人民法院关于审理建设工程施工合同纠纷案件适用法律问题的解释（一）(2020-12-29).md"
    ]
    assert tree.clauses[0].number == "序言" and "为正确审理建设工程施工合同纠纷案件" in tree.clauses[0].text
    assert {c.section_id for c in tree.clauses[1:]} == {f"{tree.doc_id}#正文"}


def test_items_of_real_articles(corpus_trees) -> None:
    _, tree = corpus_trees["laws/增值税暂行条例(2017-11-19).md"]
    second = next(c for c in tree.clauses if c.number == "第二条")
    levels = [(i.marker, i.level) for i in second.items]
    assert levels[:4] == [("第一款", 1), ("(一)", 2), ("(二)", 2), ("1．", 3)]
    assert ("第二款", 1) in levels and second.items[-1].text == "税率的调整，由国务院决定。"
    _, tree = corpus_trees["standards/企业会计准则第14号——收入（2017年修订）.md"]
    third = next(c for c in tree.clauses if c.number == "第三条")
    assert [i.marker for i in third.items] == ["第一款", "（一）", "（二）", "（三）", "第二款", "第三款"]
    assert third.items[0].text.startswith("本准则适用于所有与客户之间的合同")


def test_guide_without_articles_falls_back_to_headings(corpus_trees) -> None:
    _, tree = corpus_trees[GUIDE]
    assert tree.doc_id == "CAS-14-收入-应用指南"
    assert not any(c.number.endswith("条") for c in tree.clauses)
    top = [s for s in tree.sections if s.level == 1]
    assert [(s.number, s.title) for s in top[:3]] == [
        ("一", "总体要求"),
        ("二", "关于适用范围"),
        ("三", "关于应设置的相关会计科目和主要账务处理"),
    ]
    assert len(top) == 8
    main_income = next(s for s in tree.sections if s.title == "“主营业务收入”")
    assert (main_income.number, main_income.level, main_income.parent_id) == ("（一）", 2, top[2].section_id)
    assert [c.number for c in tree.clauses[:4]] == ["§1", "§2", "§3", "§3.1"]
    assert [c.ordinal for c in tree.clauses] == list(range(1, len(tree.clauses) + 1))
    income_unit = next(c for c in tree.clauses if c.section_id == main_income.section_id)
    assert [i.level for i in income_unit.items[:5]] == [3, 3, 3, 4, 4]
    long_units = [c for c in tree.clauses if len(c.text) > 800]
    assert long_units and all(c.chunks for c in long_units)
    assert all("".join(k.text for k in c.chunks) == c.text for c in long_units)
    assert all(not c.chunks for c in tree.clauses if len(c.text) <= 800)


def test_rebuilding_gives_identical_ids_and_hashes(corpus_dir: Path, corpus_trees) -> None:
    name = "standards/企业会计准则第21号——租赁（2018年修订）.md"
    _, first = corpus_trees[name]
    second = build_tree(markdown_document(corpus_dir / name), ChunkConfig())
    assert [(c.clause_id, c.sha256) for c in first.clauses] == [
        (c.clause_id, c.sha256) for c in second.clauses
    ]
    assert [s.section_id for s in first.sections] == [s.section_id for s in second.sections]


# -- hand-written documents ------------------------------------------------------------------


def test_items_levels_and_article_number_forms() -> None:
    tree = build_tree(
        document(
            [
                heading("某公司费用报销办法"),
                heading("第一章 总则", 2),
                para("第 一 条 本办法适用于全体员工。"),
                para("报销应当遵守下列规定："),
                para("（一）真实；"),
                para("1.有发票；"),
                para("（1）发票真实；"),
                para("①抬头正确；"),
                para("(二)合规，增长率为1.5%。"),
                para("前款规定不适用于差旅。"),
                para("第2条 阿拉伯数字的条。"),
                para("第二条之一 增加的条。"),
            ]
        ),
        ChunkConfig(),
    )
    first = tree.clauses[0]
    assert (first.clause_id, first.number, first.ordinal) == ("某公司费用报销办法/第一条", "第一条", 1)
    assert [(i.marker, i.level) for i in first.items] == [
        ("第一款", 1),
        ("第二款", 1),
        ("（一）", 2),
        ("1.", 3),
        ("（1）", 4),
        ("①", 5),
        ("(二)", 2),
        ("第三款", 1),
    ]
    assert first.items[0].text == "本办法适用于全体员工。" and first.items[3].text == "有发票；"
    assert first.text.endswith("前款规定不适用于差旅。")
    assert [(c.number, c.ordinal) for c in tree.clauses[1:]] == [("第2条", 2), ("第二条之一", 2)]
    assert [s.number for s in tree.sections] == ["第一章"]  # the title heading is no section


def test_preamble_appendices_and_repeated_numbers() -> None:
    tree = build_tree(
        document(
            [
                heading("某公司费用报销办法"),
                para("为规范费用报销，特制定本办法。", 1),
                heading("第一章 总则", 2),
                para("第一条 本办法适用于全体员工。", 1),
                para("第二条 报销应当及时。", 2),
                para("第二条 扫描重复的条。", 2),
                para("第三条 本办法自发布之日起施行。", 2, 3),
                heading("附件1 差旅管理细则", 1, 4),
                para("本细则说明差旅报销。", 4),
                para("第一条 细则第一条。", 4),
                para("第二条 细则第二条。", 5),
                para("附表2 住宿标准", 6),
                table([["城市", "标准（元）"], ["北京", "600"], ["上海", "550"]], 6),
                para("注：按实际发生报销。", 6),
            ]
        ),
        ChunkConfig(),
    )
    by_id = {c.clause_id: c for c in tree.clauses}
    ids = [c.clause_id.split("/", 1)[1] for c in tree.clauses]
    assert ids == [
        "序言",
        "第一条",
        "第二条",
        "第二条_2",
        "第三条",
        "附件1",
        "附件1/第一条",
        "附件1/第二条",
        "附表2",
    ]
    preamble = by_id["某公司费用报销办法/序言"]
    assert (preamble.ordinal, preamble.section_id) == (0, "某公司费用报销办法#序言")
    assert by_id["某公司费用报销办法/第三条"].page_end == 3
    appendix = by_id["某公司费用报销办法/附件1"]
    assert appendix.ordinal > 3 and appendix.text == "本细则说明差旅报销。"
    assert by_id["某公司费用报销办法/附件1/第一条"].number == "第一条"
    assert by_id["某公司费用报销办法/附件1/第二条"].section_id == "某公司费用报销办法#附件1"
    schedule = by_id["某公司费用报销办法/附表2"]
    assert schedule.ordinal > appendix.ordinal and schedule.text == "注：按实际发生报销。"
    (tbl,) = tree.tables
    assert (tbl.table_id, tbl.section_id, tbl.caption) == (
        "某公司费用报销办法/表1",
        "某公司费用报销办法#附表2",
        "附表2 住宿标准",
    )
    assert tbl.header == ["城市", "标准（元）"] and tbl.rows == [["北京", "600"], ["上海", "550"]]
    assert any("第二条 appears more than once" in w and "第二条_2" in w for w in tree.warnings)
    assert any("附件1/第一条" in w for w in tree.warnings)


def test_table_inside_an_article_keeps_the_article_whole() -> None:
    tree = build_tree(
        document(
            [
                para("第一条 报销标准见下表："),
                para("表1 报销标准"),
                table([["项目", "标准"], ["住宿", "500"]], 2),
                para("超标部分自理。", 2),
                para("第二条 数字表格。", 3),
                table([["1", "2"], ["3", "4"]], 3),
                table([["说明"]], 3, caption="解析器给出的标题"),
            ],
            title="短办法",
        ),
        ChunkConfig(),
    )
    assert [c.text for c in tree.clauses] == ["第一条 报销标准见下表：\n超标部分自理。", "第二条 数字表格。"]
    assert tree.clauses[0].page_end == 2
    captions = [t.caption for t in tree.tables]
    assert captions == ["表1 报销标准", None, "解析器给出的标题"]
    assert [t.header for t in tree.tables] == [["项目", "标准"], None, None]
    assert all(t.section_id == "短办法#正文" for t in tree.tables)


def test_prose_starting_like_a_division_is_not_a_section() -> None:
    long_line = "第二节规定的事项，应当在每个会计年度结束后三个月内完成，并报送主管部门备案。"
    tree = build_tree(
        document([para("第一条 总则。"), para(long_line), para("第二条 其他。")]), ChunkConfig()
    )
    assert [s.number for s in tree.sections] == ["正文"]
    assert tree.clauses[0].text.endswith(long_line)


def test_heading_document_uses_levels_and_position_numbers() -> None:
    tree = build_tree(
        document(
            [
                heading("员工手册"),
                para("本手册适用于全体员工。"),
                heading("考勤", 1),
                para("工作时间为九点至十八点。"),
                heading("请假", 2),
                para("请假应提前申请。"),
                heading("加班", 2),
                heading("报销", 1),
                para("报销流程如下。"),
            ],
            title="员工手册",
        ),
        ChunkConfig(),
    )
    assert [(s.title, s.level, s.section_id) for s in tree.sections] == [
        ("序言", 1, "员工手册#序言"),
        ("考勤", 1, "员工手册#1"),
        ("请假", 2, "员工手册#1/1"),
        ("加班", 2, "员工手册#1/2"),
        ("报销", 1, "员工手册#2"),
    ]
    assert [(c.number, c.ordinal) for c in tree.clauses] == [("序言", 0), ("§1", 1), ("§1.1", 2), ("§2", 3)]
    assert tree.sections[2].parent_id == "员工手册#1"
    assert tree.clauses[1].items[0].marker == "第一段"


def test_document_without_any_structure_is_one_body_clause() -> None:
    blocks = [para("第一段文字。", 1), para("第二段文字。", 2)]
    tree = build_tree(document(blocks, title="broker report"), ChunkConfig())
    assert tree.doc_id == "BROKER-REPORT"
    assert [(c.clause_id, c.page_start, c.page_end) for c in tree.clauses] == [("BROKER-REPORT/正文", 1, 2)]
    assert [s.section_id for s in tree.sections] == ["BROKER-REPORT#正文"]


def test_long_article_is_chunked_under_its_id() -> None:
    body = "企业应当按照合同约定确认收入。" * 80
    tree = build_tree(
        document([para("第一条 " + body)]), ChunkConfig(target_chars=300, min_chars=50, max_chars=400)
    )
    clause = tree.clauses[0]
    assert len(clause.chunks) >= 4
    assert {k.clause_id for k in clause.chunks} == {clause.clause_id}
    assert "".join(k.text for k in clause.chunks) == clause.text


def test_hash_ignores_typesetting_only() -> None:
    assert text_hash("第一条　本法自２０００年施行。") == text_hash("第一条 本法自2000年施行。")
    assert text_hash("第一条 本法自2000年施行。") != text_hash("第一条 本法自2001年施行。")


# -- behind the real parser and cleaner ------------------------------------------------------


def test_real_parser_and_cleaner_feed_the_tree(corpus_dir: Path) -> None:
    parsers = pytest.importorskip("ingest.parsers")
    clean = pytest.importorskip("ingest.clean")
    from ingest.config import IngestConfig

    config = IngestConfig()
    law = clean.clean_document(
        parsers.parse_file(corpus_dir / "laws/建筑法(2019-04-23).md", config), config.clean
    )
    tree = build_tree(law, config.chunk)
    assert tree.doc_id == "建筑法"
    assert [c.ordinal for c in tree.clauses if c.number.endswith("条")] == list(range(1, 86))
    assert next(s for s in tree.sections if s.number == "第一节").parent_id == "建筑法#第二章"

    docx = clean.clean_document(
        parsers.parse_file(corpus_dir / "docx/mixed-tables.docx", config), config.clean
    )
    tree = build_tree(docx, config.chunk)
    assert len(tree.tables) == sum(1 for b in docx.blocks if b.kind == "table") >= 5
    section_ids = {s.section_id for s in tree.sections}
    assert all(t.section_id in section_ids for t in tree.tables)
    assert ["Column A", "Column B"] in [t.header for t in tree.tables]
    assert not any(c.number.endswith("条") for c in tree.clauses)
    assert all(c.section_id in section_ids for c in tree.clauses)


def test_repeated_chapter_gets_distinct_section_ids_down_the_tree() -> None:
    tree = build_tree(
        document(
            [
                para("第一章 总则"),
                para("第一节 一般规定"),
                para("第一条 甲。"),
                para("第一章 总则"),  # OCR doubled the heading
                para("第一节 一般规定"),
                para("第二条 乙。"),
            ]
        ),
        ChunkConfig(),
    )
    ids = [s.section_id for s in tree.sections]
    assert len(set(ids)) == len(ids) == 4
    assert ids[2:] == ["某公司费用报销办法#第一章_2", "某公司费用报销办法#第一章_2/第一节"]
    assert tree.clauses[1].section_id == ids[3]
    assert any("repeats" in w for w in tree.warnings)
