"""Tests for scripts/render_docs.py: the rendered files must carry exactly the artefacts tests rely on."""

from __future__ import annotations

import re
import zipfile
from itertools import pairwise
from pathlib import Path

import pdfplumber
import pytest
from docx import Document

from kgqa.errors import ConfigError
from scripts.render_docs import (
    DEFAULT_FONT_PATH,
    parse_markdown,
    render_docx,
    render_pdf,
    render_scanned_pdf,
)

pytestmark = pytest.mark.skipif(not DEFAULT_FONT_PATH.is_file(), reason="fonts-wqy-microhei not installed")

HEADER = "云岭建设集团有限公司 财务管理制度汇编"
PII = "联系人电话13800138000。"
LONG_ROWS = 70

MARKDOWN = "\n".join(
    [
        "# 测试手册",
        "",
        "## 第一章 总则",
        "",
        "第一条 为规范工程项目价款结算，制定本手册。",
        "项目部应当在收到监理确认的计量报告后十四日内审核完毕。",
        "",
        "第二条 本手册所称预付款，是指建设单位在开工前支付的款项。",
        "",
        "| 事项 | 金额区间 | 审批人 | 时限 |",
        "|---|---|---|---|",
        *[f"| 事项{i} | {i}万元以下 | 项目经理 | {i}日 |" for i in range(1, LONG_ROWS + 1)],
        "",
        "### 第一节 附则",
        "",
        *[f"第{i}条 " + "本条用于撑开篇幅，使文档超过一页。" * 12 + "\n" for i in range(3, 9)],
    ]
)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("render")
    paths = {
        "pdf": out / "m.pdf",
        "scan": out / "scan.pdf",
        "docx": out / "m.docx",
        "again": out / "again.pdf",
    }
    options = {"header": HEADER, "blank_page_after": 1, "personal_data": [PII]}
    render_pdf(MARKDOWN, paths["pdf"], **options)
    render_pdf(MARKDOWN, paths["again"], **options)
    render_scanned_pdf(paths["pdf"], paths["scan"], dpi=50)
    render_docx(MARKDOWN, paths["docx"], header=HEADER, footer="第 {page} 页 共 {pages} 页")
    return paths


def test_parse_markdown_blocks() -> None:
    blocks = parse_markdown(MARKDOWN)
    kinds = [b.kind for b in blocks[:5]]
    assert kinds == ["heading", "heading", "paragraph", "paragraph", "table"]
    assert [b.level for b in blocks[:2]] == [1, 2]
    # consecutive lines join into one paragraph, without a space (Chinese text)
    assert (
        blocks[2].text
        == "第一条 为规范工程项目价款结算，制定本手册。项目部应当在收到监理确认的计量报告后十四日内审核完毕。"
    )
    table = blocks[4]
    assert table.rows[0] == ("事项", "金额区间", "审批人", "时限")
    assert len(table.rows) == LONG_ROWS + 1
    assert next(b for b in blocks if b.kind == "heading" and b.level == 3).text == "第一节 附则"


def test_pdf_header_and_footer_in_their_bands(rendered: dict[str, Path]) -> None:
    with pdfplumber.open(rendered["pdf"]) as pdf:
        total = len(pdf.pages)
        assert total >= 3
        for number, page in enumerate(pdf.pages, start=1):
            top = page.crop((0, 0, page.width, 60)).extract_text()
            bottom = page.crop((0, page.height - 50, page.width, page.height)).extract_text()
            assert top == HEADER
            assert bottom == f"第 {number} 页 共 {total} 页"


def test_pdf_blank_page_has_only_header_and_footer(rendered: dict[str, Path]) -> None:
    with pdfplumber.open(rendered["pdf"]) as pdf:
        blank = pdf.pages[1]
        total = len(pdf.pages)
        assert blank.extract_text().splitlines() == [HEADER, f"第 2 页 共 {total} 页"]
        assert not blank.find_tables()
        # the content resumes on the page after the blank one
        assert "事项" in pdf.pages[2].extract_text()


def test_pdf_long_table_splits_with_repeated_header(rendered: dict[str, Path]) -> None:
    with pdfplumber.open(rendered["pdf"]) as pdf:
        tables = [t for page in pdf.pages for t in page.extract_tables()]
    assert len(tables) >= 2, "the 70-row table should split across pages"
    for table in tables:
        assert table[0] == ["事项", "金额区间", "审批人", "时限"]
    body_rows = [row for table in tables for row in table[1:]]
    assert [row[0] for row in body_rows] == [f"事项{i}" for i in range(1, LONG_ROWS + 1)]


def test_pdf_text_paragraphs_and_planted_pii(rendered: dict[str, Path]) -> None:
    with pdfplumber.open(rendered["pdf"]) as pdf:
        text = "".join(pdf.pages[0].extract_text().split())
    assert "第一条为规范工程项目价款结算" in text
    assert "十四日内审核完毕。" + PII in text


def test_pdf_is_deterministic(rendered: dict[str, Path]) -> None:
    assert rendered["pdf"].read_bytes() == rendered["again"].read_bytes()


def test_scanned_pdf_has_images_and_no_text(rendered: dict[str, Path]) -> None:
    with pdfplumber.open(rendered["pdf"]) as source, pdfplumber.open(rendered["scan"]) as scan:
        assert len(scan.pages) == len(source.pages)
        for src_page, page in zip(source.pages, scan.pages, strict=True):
            assert page.extract_text() == ""
            assert not page.chars
            assert len(page.images) == 1
            assert (round(page.width), round(page.height)) == (round(src_page.width), round(src_page.height))


def test_docx_structure_header_footer_and_table(rendered: dict[str, Path]) -> None:
    doc = Document(str(rendered["docx"]))
    headings = [(p.style.name, p.text) for p in doc.paragraphs if p.style.name.startswith("Heading")]
    assert headings[:2] == [("Heading 1", "测试手册"), ("Heading 2", "第一章 总则")]
    assert ("Heading 3", "第一节 附则") in headings
    section = doc.sections[0]
    assert section.header.paragraphs[0].text == HEADER
    footer_xml = section.footer.paragraphs[0]._p.xml
    assert "PAGE" in footer_xml and "NUMPAGES" in footer_xml
    assert HEADER not in "".join(p.text for p in doc.paragraphs), (
        "header text must live only in the header part"
    )
    (table,) = doc.tables
    assert table.style.name == "Table Grid"
    assert [c.text for c in table.rows[0].cells] == ["事项", "金额区间", "审批人", "时限"]
    assert len(table.rows) == LONG_ROWS + 1
    with zipfile.ZipFile(rendered["docx"]) as zf:
        names = zf.namelist()
        assert any(re.fullmatch(r"word/header\d*\.xml", n) for n in names)
        assert any(re.fullmatch(r"word/footer\d*\.xml", n) for n in names)
        assert {info.date_time for info in zf.infolist()} == {(2025, 1, 1, 0, 0, 0)}


def test_missing_font_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fonts-wqy-microhei"):
        render_pdf("# 标题", tmp_path / "x.pdf", font_path=tmp_path / "missing.ttc")


# ------------------------------------------------------------------------------------ the samples

CN_NUMBER = "[一二三四五六七八九十百零]+"
TITLES = {"管理手册": "《工程项目价款结算（成本列账）管理手册》", "业务手册": "《工程项目价款结算业务手册》"}


def _clauses(markdown: str) -> dict[int, str]:
    """Clause number -> full clause text (its 款 and 项 paragraphs included)."""
    import cn2an

    clauses: dict[int, str] = {}
    current = None
    for line in markdown.splitlines():
        match = re.match(rf"第({CN_NUMBER})条 ", line)
        if match:
            current = int(cn2an.cn2an(match.group(1), "normal"))
            clauses[current] = line
        elif line.startswith(("#", "附表", "|")):
            current = None
        elif current is not None and line.strip():
            clauses[current] += line
    return clauses


@pytest.fixture(scope="module")
def sources(samples_dir: Path) -> dict[str, str]:
    return {name: (samples_dir / "src" / f"{name}.md").read_text(encoding="utf-8") for name in TITLES}


def test_samples_ingestible_set_has_one_file_per_manual(samples_dir: Path) -> None:
    manuals = samples_dir / "manuals"  # exactly what `make up` ingests: one file per manual
    files = {p.name for p in manuals.iterdir()}
    assert files == {"管理手册.pdf", "业务手册.docx", "费用报销操作指引.md"}
    for name in files:
        assert (manuals / name).stat().st_size < 1_000_000


def test_sample_clauses_are_numbered_in_sequence(sources: dict[str, str]) -> None:
    for name, markdown in sources.items():
        numbers = list(_clauses(markdown))
        assert numbers == list(range(1, len(numbers) + 1)), name
        assert 35 <= len(numbers) <= 60, name
    assert (
        max(len(re.findall(r"[\u4e00-\u9fff]", text)) for text in _clauses(sources["管理手册"]).values())
        > 900
    )


def test_sample_cross_references_resolve(sources: dict[str, str]) -> None:
    import cn2an

    clauses = {name: _clauses(md) for name, md in sources.items()}
    seen = 0
    for name, markdown in sources.items():
        for match in re.finditer(rf"本手册第({CN_NUMBER})条", markdown):
            assert int(cn2an.cn2an(match.group(1), "normal")) in clauses[name], (name, match.group(0))
            seen += 1
        other = next(n for n in TITLES if n != name)
        for match in re.finditer(re.escape(TITLES[other]) + rf"第({CN_NUMBER})条", markdown):
            assert int(cn2an.cn2an(match.group(1), "normal")) in clauses[other], (name, match.group(0))
            seen += 1
    assert seen >= 8


def test_sample_rules_agree_across_manuals(sources: dict[str, str]) -> None:
    policy, procedure = _clauses(sources["管理手册"]), _clauses(sources["业务手册"])
    # the policy's deadline equals the sum of the procedure's steps (7 + 5 + 2 = 14 days; 14 + 7 + 7 = 28)
    assert "十四日内审核完毕" in policy[15] and all(s in procedure[8] for s in ("七日内", "五日内", "二日内"))
    assert "二十八日内返还" in policy[22] and "二十八日内办结" in procedure[22]
    for rule in ("百分之三预留", "二十四个月"):
        assert rule in policy[21] and rule in procedure[20] + procedure[21]
    assert "单笔超过五十万元的付款须经分管副总经理审批" in policy[35]
    assert "单笔超过五十万元的付款须经分管副总经理审批" in procedure[12]
    assert "百分之二十" in policy[18] and "百分之二十" in procedure[16]


def test_sample_files_match_their_sources(samples_dir: Path, tmp_path: Path) -> None:
    from scripts.render_samples import render_all

    fresh_pdf, fresh_docx = render_all(tmp_path, samples_dir / "src")
    with (
        pdfplumber.open(fresh_pdf) as fresh,
        pdfplumber.open(samples_dir / "manuals" / "管理手册.pdf") as shipped,
    ):
        assert [p.extract_text() for p in fresh.pages] == [p.extract_text() for p in shipped.pages], (
            "samples/manuals/管理手册.pdf is stale: run python -m scripts.render_samples"
        )
        texts = [p.extract_text() for p in shipped.pages]
        assert texts[2].splitlines() == [HEADER, f"第 3 页 共 {len(texts)} 页"]  # the blank page
        assert "13800138000" in "".join(texts) and "jiesuan@example.com" in "".join(texts)
        tables = [page.extract_tables() for page in shipped.pages]
        # a table continues onto the next page, its header row repeated there
        splits = [a[-1][0] for a, b in pairwise(tables) if a and b and a[-1][0] == b[0][0]]
        assert ["一级科目", "二级科目", "三级明细科目", "列账依据", "责任部门"] in splits
    fresh_doc, shipped_doc = (
        Document(str(fresh_docx)),
        Document(str(samples_dir / "manuals" / "业务手册.docx")),
    )
    assert [p.text for p in fresh_doc.paragraphs] == [p.text for p in shipped_doc.paragraphs], (
        "samples/manuals/业务手册.docx is stale: run python -m scripts.render_samples"
    )
    assert shipped_doc.sections[0].header.paragraphs[0].text == HEADER
    assert len(shipped_doc.tables) == 1


def test_plain_markdown_guide_has_no_clause_numbers(samples_dir: Path) -> None:
    text = (samples_dir / "manuals" / "费用报销操作指引.md").read_text(encoding="utf-8")
    assert not re.search(rf"第{CN_NUMBER}条", text)
    assert 1200 <= len("".join(text.split())) <= 2000
    assert [b.kind for b in parse_markdown(text)].count("table") == 1
