"""TXT and Markdown: encodings, headings, tables, and nothing lost on the corpus files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.config import IngestConfig
from ingest.parsers import parse_file
from ingest.types import Line, RawTable

LAW = "laws/会计法(2024-06-28).md"
STANDARD = "standards/企业会计准则第1号——存货（2006）.md"


def test_law_markdown_headings_title_and_single_page(corpus_dir: Path) -> None:
    doc = parse_file(corpus_dir / LAW, IngestConfig())
    assert doc.kind == "md" and [p.number for p in doc.pages] == [1]
    assert doc.title == "中华人民共和国会计法"
    lines = doc.pages[0].lines
    assert lines[0] == Line(text="中华人民共和国会计法", heading_level=1)
    chapters = [line.text for line in lines if line.heading_level == 2]
    assert chapters[0] == "第一章 总 则" and chapters[-1] == "第六章 附 则" and len(chapters) == 6
    assert sum(1 for line in lines if line.text.startswith("第一条")) == 1
    assert all(line.top is None for line in lines)


def test_markdown_keeps_every_line_of_text(corpus_dir: Path) -> None:
    for rel in (LAW, STANDARD):
        path = corpus_dir / rel
        doc = parse_file(path, IngestConfig())
        kept = "\n".join(line.text for line in doc.pages[0].lines)
        for raw in path.read_text(encoding="utf-8-sig").splitlines():
            text = raw.strip().lstrip("#").strip()
            if text and not set(text) <= set("=-*_ "):  # rules and setext underlines carry no text
                assert text in kept, f"{rel}: lost {text!r}"


def test_standard_with_bom_and_setext_debris(corpus_dir: Path) -> None:
    doc = parse_file(corpus_dir / STANDARD, IngestConfig())
    assert doc.title == "企业会计准则第1号——存货（2006）"  # no BOM, no "===" underline
    texts = [line.text for line in doc.pages[0].lines]
    assert not any(set(t.strip()) == {"="} for t in texts)
    assert "**第一章** **总则**" in texts  # emphasis debris is the cleaner's job


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig", "utf-16", "utf-8"])
def test_encodings_decode_to_the_same_text(corpus_dir: Path, tmp_path: Path, encoding: str) -> None:
    source = corpus_dir / LAW
    text = source.read_text(encoding="utf-8").replace("\u3000", " ")  # U+3000 exists in GBK, keep it simple
    copy = tmp_path / f"会计法-{encoding}.md"
    copy.write_bytes(text.encode(encoding))
    reference = tmp_path / "会计法-ref.md"
    reference.write_text(text, encoding="utf-8")
    parsed = parse_file(copy, IngestConfig())
    expected = parse_file(reference, IngestConfig())
    assert parsed.pages == expected.pages
    assert parsed.title == "中华人民共和国会计法"


def test_short_gbk_text_file(tmp_path: Path) -> None:
    path = tmp_path / "报销须知(2022-03-15).txt"
    path.write_bytes(
        "第一条 差旅费报销应当在三十日内完成。\n\n第二条 超过限额的需经财务总监审批。\n".encode("gbk")
    )
    doc = parse_file(path, IngestConfig())
    assert doc.kind == "txt" and doc.title == "报销须知"
    assert [line.text for line in doc.pages[0].lines] == [
        "第一条 差旅费报销应当在三十日内完成。",
        "第二条 超过限额的需经财务总监审批。",
    ]


def test_markdown_pipe_and_html_tables(tmp_path: Path) -> None:
    path = tmp_path / "limits.md"
    path.write_text(
        "审批权限\n========\n\n"
        "| 项目 | 限额 |\n|---|---:|\n| 差旅费 | 5 万元 |\n| 采购 \\| 工程 | 200 万元 |\n\n"
        "中间段落，**加粗**保留。\n\n"
        '<table><tr><th>级别</th><th colspan="2">审批人</th></tr><tr><td>一级</td><td>经理</td><td>总监</td></tr></table>\n\n'
        "## 附则\n\n- 1. 本办法自发布之日起施行。\n",
        encoding="utf-8",
    )
    doc = parse_file(path, IngestConfig())
    items = doc.pages[0].items
    assert doc.title == "审批权限"
    assert items[0] == Line(text="审批权限", heading_level=1)
    assert items[1] == RawTable(
        rows=[["项目", "限额"], ["差旅费", "5 万元"], ["采购 | 工程", "200 万元"]], page=1
    )
    assert items[2] == Line(text="中间段落，**加粗**保留。")
    assert items[3] == RawTable(rows=[["级别", "审批人", ""], ["一级", "经理", "总监"]], page=1)
    assert items[4] == Line(text="附则", heading_level=2)
    assert items[5] == Line(text="- 1. 本办法自发布之日起施行。")
