"""Personal data never reaches the graph or the logs (issue 13), end to end on a real Neo4j.

A fictional expense manual carries personal data the checksum rules miss, in its text, in a table,
on a scanned page and in its file name. It is ingested as `kgqa ingest` does (worker process,
real OCR), then every property of every node and relationship, and every log event, is searched
for each value and for fragments of it (8-digit windows of the numbers, street and unit of the
address), after removing spaces and dashes and reading full-width forms as ASCII.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
import structlog

from ingest.redaction.text import as_digits
from kg.ingest_service import IngestService
from kg.triples import RuleTripleExtractor
from kg.writer import GraphWriter

pytestmark = pytest.mark.neo4j

FILE_NAME = "报销手册_联系人_赵敏_13800138000.pdf"
MANUAL = """# 费用报销手册

第一条 为规范费用报销，制定本手册。联系人：王建国，手机：１３９１２３４５６７８，邮箱：wang.jianguo@example.com。

第二条 报销款项汇入收款人账户。收款人刘洋，银行账号：0200 0010 0920 0012 345，身份证号：110105199003071238。

第三条 出差人员护照号码：E12345678，往来港澳通行证号码：C12345678，住址：北京市朝阳区建国路88号3单元502室。

第四条 报销人信息见下表。

| 姓名 | 证件号码 | 开户账号 | 联系电话 |
|---|---|---|---|
| 陈晓东 | 11O1O5I99OO3O71239 | 6222 0202 0011 2233 445 | 010-6512 3456 |
| 欧阳娜娜 | G87654321 | 1100-1020-3000-5000-1234 | 138 0013 8000 |

第五条 本手册自发布之日起施行。
"""
SCANNED = """# 附件

第六条 扫描件中的报销说明：经办人：李娜，电话：13912345678，身份证号：11010519491231002X。
"""
PERSONAL = [
    "王建国",
    "１３９１２３４５６７８",
    "wang.jianguo@example.com",
    "刘洋",
    "0200 0010 0920 0012 345",
    "110105199003071238",
    "E12345678",
    "C12345678",
    "北京市朝阳区建国路88号3单元502室",
    "陈晓东",
    "11O1O5I99OO3O71239",
    "6222 0202 0011 2233 445",
    "010-6512 3456",
    "欧阳娜娜",
    "G87654321",
    "1100-1020-3000-5000-1234",
    "138 0013 8000",
    "李娜",
    "11010519491231002X",
    "赵敏",
    "13800138000",
]


def _compact(text: str) -> str:
    return re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", text))


def _needles(value: str) -> set[str]:
    """The value and fragments of it that alone would still identify someone."""
    compact = _compact(value)
    needles = {compact}
    digits = re.sub(r"\D", "", as_digits(compact))
    if len(digits) >= 8:
        needles |= {digits[i : i + 8] for i in range(len(digits) - 7)}
    if "路" in compact:
        needles |= {"建国路88号", "3单元502室"}
    if "@" in compact:
        needles.add(compact.split("@")[0])
    return needles


def _haystacks(driver) -> list[tuple[str, str]]:
    """(where, text) for every string (or string list) property of every node and relationship."""
    out: list[tuple[str, str]] = []
    for query in (
        "MATCH (n) RETURN labels(n)[0] AS kind, properties(n) AS props",
        "MATCH ()-[r]->() RETURN type(r) AS kind, properties(r) AS props",
    ):
        rows, _, _ = driver.execute_query(query)
        for row in rows:
            for key, value in row["props"].items():
                values = value if isinstance(value, list) else [value]
                for v in values:
                    if isinstance(v, str):
                        out.append((f"{row['kind']}.{key}", v))
    return out


def _leaks(texts: list[tuple[str, str]]) -> list[str]:
    found = []
    normalized = [(where, _compact(text)) for where, text in texts]
    for value in PERSONAL:
        for needle in _needles(value):
            for where, text in normalized:
                if needle in text or needle in as_digits(text):
                    found.append(f"{value!r} ({needle!r}) in {where}: {text[:120]!r}")
    return found


@pytest.fixture(scope="module")
def manual(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import pypdfium2 as pdfium

    from scripts.render_docs import render_pdf, render_scanned_pdf

    work = tmp_path_factory.mktemp("personal")
    render_pdf(MANUAL, work / "text.pdf", header=None)
    render_pdf(SCANNED, work / "scan-src.pdf", header=None)
    render_scanned_pdf(work / "scan-src.pdf", work / "scan.pdf", dpi=150)
    merged = pdfium.PdfDocument.new()
    for part in ("text.pdf", "scan.pdf"):
        source = pdfium.PdfDocument(str(work / part))
        merged.import_pages(source)
    out = work / "manuals" / FILE_NAME
    out.parent.mkdir()
    merged.save(str(out))
    return out


def test_personal_data_reaches_neither_the_graph_nor_the_logs(clean_graph, manual, capfd):
    from ingest.config import IngestConfig
    from ingest.worker import IsolatedPipeline
    from kgqa.logging import configure_logging

    configure_logging("DEBUG")
    service = IngestService(IsolatedPipeline(IngestConfig()), RuleTripleExtractor(), GraphWriter(clean_graph))
    with structlog.testing.capture_logs() as events:
        report = service.ingest([manual.parent])
    printed = capfd.readouterr()
    assert report.ok, report.failed
    (doc,) = report.ingested
    assert doc.ocr_pages == 1, "the scanned page must go through OCR"

    graph = _haystacks(clean_graph)
    everything = " ".join(_compact(text) for _, text in graph)
    # the test can see what it looks for: the text around the personal data did arrive
    for sentence in ("为规范费用报销", "出差人员护照号码", "本手册自发布之日起施行", "扫描件中的报销说明"):
        assert sentence in everything, sentence
    assert "[姓名]" in everything and "[身份证号]" in everything and "[地址]" in everything

    assert _leaks(graph) == []
    logs = [(f"log {e.get('event')}", repr(e)) for e in events]
    assert logs, "the worker's log events are replayed in this process"
    assert _leaks(logs) == []
    assert _leaks([("stderr", printed.err), ("stdout", printed.out)]) == []

    rows, _, _ = clean_graph.execute_query("MATCH (d:Document) RETURN d.source_path AS p, d.title AS t")
    assert Path(rows[0]["p"]).name == "报销手册_联系人_[姓名]_[手机号].pdf"
    assert doc.redactions["姓名"] >= 6 and doc.redactions["身份证号"] >= 2
