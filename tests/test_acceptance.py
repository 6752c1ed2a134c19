"""The issue's acceptance check, end to end, on a real Neo4j.

A public standard is rendered as an internal-manual PDF (running header, page footer, a blank page,
a table split over pages, planted personal data) and as an image-only scan; both are ingested next
to bad files. We count clauses against the source, search the whole graph for header/footer text
and personal data, compare table rows, re-ingest unchanged and modified copies.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from ingest.config import IngestConfig
from ingest.pipeline import IngestPipeline
from kg.ingest_service import IngestService
from kg.reader import GraphReader
from kg.triples import RuleTripleExtractor
from kg.writer import GraphWriter

pytestmark = pytest.mark.neo4j

HEADER = "云岭建设集团有限公司 内部资料 严禁外传"
PII = {
    "手机号": "13912345678",
    "身份证号": "11010519491231002X",
    "邮箱": "zhang.san@example.com",
    "银行卡号": "6222 0212 3456 7890 128",
}
TABLE_ROWS = [["存货类别", "计价方法", "审批人"]] + [
    [f"原材料{i:02d}", "先进先出法" if i % 2 else "加权平均法", f"仓储主管{i:02d}"] for i in range(1, 46)
]
CLAUSE_LINE = re.compile(r"^\s*(?:\*\*)?(第[一二三四五六七八九十百零]+条)")


def _source(corpus_dir: Path) -> str:
    return (corpus_dir / "standards" / "企业会计准则第1号——存货（2006）.md").read_text(encoding="utf-8-sig")


def _manual_markdown(source: str) -> str:
    """The standard as a knowledge manager would lay it out in an internal manual, plus a long table."""
    lines = [
        ln.replace("**", "").strip().lstrip("\u3000")
        for ln in source.splitlines()
        if not ln.startswith("===")
    ]
    body = "\n\n".join(ln for ln in lines if ln)
    table = "\n".join(
        ["| " + " | ".join(r) + " |" for r in TABLE_ROWS[:1]]
        + ["|---|---|---|"]
        + ["| " + " | ".join(r) + " |" for r in TABLE_ROWS[1:]]
    )
    return body.replace("第五条", "附：存货计价审批表\n\n" + table + "\n\n第五条", 1)


@pytest.fixture(scope="module")
def rendered(corpus_dir: Path, tmp_path_factory) -> dict[str, Path]:
    from scripts.render_docs import render_pdf, render_scanned_pdf

    src = _source(corpus_dir)
    out = tmp_path_factory.mktemp("rendered")
    md = _manual_markdown(src)
    pdf = out / "企业会计准则第1号——存货.pdf"
    planted = [
        f"联系人手机{PII['手机号']}，身份证号{PII['身份证号']}",
        f"邮箱{PII['邮箱']}，报销卡号{PII['银行卡号']}",
    ]
    render_pdf(md, pdf, header=HEADER, blank_page_after=2, personal_data=planted)
    changed = out / "modified" / "企业会计准则第1号——存货.pdf"
    changed.parent.mkdir()
    render_pdf(
        md.replace("存货应当按照成本进行初始计量", "存货应当按照实际成本进行初始计量"),
        changed,
        header=HEADER,
        blank_page_after=2,
        personal_data=planted,
    )
    scan_src = out / "scan-src.pdf"
    render_pdf(md.split("第十条")[0], scan_src, header=HEADER)
    scan = out / "scan" / "存货准则扫描件.pdf"
    scan.parent.mkdir()
    render_scanned_pdf(scan_src, scan, dpi=150)
    bad = out / "bad"
    bad.mkdir()
    (bad / "empty.pdf").write_bytes(b"")
    (bad / "not-a-pdf.pdf").write_bytes(b"PK\x03\x04 definitely a zip, not a PDF")
    (bad / "truncated.pdf").write_bytes(pdf.read_bytes()[: pdf.stat().st_size // 3])
    (bad / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    return {"source": src, "pdf": pdf, "changed": changed, "scan": scan, "bad": bad}


@pytest.fixture(scope="module")
def service_factory():
    pipeline = IngestPipeline(IngestConfig())
    extractor = RuleTripleExtractor()
    return lambda driver: IngestService(pipeline, extractor, GraphWriter(driver))


def _active_numbers(driver, doc_id: str) -> list[str]:
    rows, _, _ = driver.execute_query(
        "MATCH (c:Clause {doc_id: $d, status: 'active'}) WHERE c.number STARTS WITH '第' "
        "RETURN c.number AS n ORDER BY c.ordinal",
        d=doc_id,
    )
    return [r["n"] for r in rows]


def test_rendered_manual_end_to_end(clean_graph, rendered, service_factory, capfd):
    from kgqa.logging import configure_logging

    configure_logging("DEBUG")
    service = service_factory(clean_graph)
    report = service.ingest([rendered["pdf"], rendered["bad"]])
    logged = capfd.readouterr()
    for value in PII.values():
        assert value not in logged.err + logged.out, "personal data must never reach the logs"

    # bad files: each listed with a reason, the good file still ingested
    failed = {Path(f.path).name: f.reason for f in report.failed}
    assert set(failed) == {"empty.pdf", "not-a-pdf.pdf", "truncated.pdf", "sheet.xlsx"}
    assert all(reason for reason in failed.values())
    assert [f.doc_id for f in report.ingested] == ["CAS-1-存货"]
    doc = report.ingested[0]
    assert doc.redactions.get("手机号") == 1 and doc.redactions.get("身份证号") == 1
    assert doc.redactions.get("邮箱") == 1 and doc.redactions.get("银行卡号") == 1

    # every 第X条 of the source exactly once, in order
    expected = [m.group(1) for ln in rendered["source"].splitlines() if (m := CLAUSE_LINE.match(ln))]
    assert len(expected) == 22
    assert _active_numbers(clean_graph, "CAS-1-存货") == expected

    # no header/footer text and no personal data anywhere in the graph
    reader = GraphReader(clean_graph)
    for needle in ["严禁外传", "内部资料", "共 ", *PII.values(), PII["银行卡号"].replace(" ", "")]:
        assert reader.find_text(needle) == [], needle

    # the table split over pages is one Table node with every row
    rows, _, _ = clean_graph.execute_query(
        "MATCH (t:Table {doc_id: 'CAS-1-存货'}) RETURN t.rows_json AS r, t.header_json AS h"
    )
    assert len(rows) == 1
    import json

    header, body = json.loads(rows[0]["h"]), json.loads(rows[0]["r"])
    assert header == TABLE_ROWS[0]
    assert body == TABLE_ROWS[1:]

    # unchanged re-ingest changes nothing
    counts = reader.stats()
    again = service.ingest([rendered["pdf"]])
    assert again.ingested[0].status == "unchanged"
    assert reader.stats() == counts

    # a modified copy in another folder would replace the stored document: refused, graph untouched
    elsewhere = service.ingest([rendered["changed"]])
    assert elsewhere.ingested == [] and "--replace CAS-1-存货" in elsewhere.failed[0].reason
    assert reader.stats() == counts

    # the same file, modified in place, versions only the changed clause
    shutil.copyfile(rendered["changed"], rendered["pdf"])
    modified = service.ingest([rendered["pdf"]])
    m = modified.ingested[0]
    assert (m.status, m.clauses_updated, m.clauses_added, m.clauses_retired) == ("updated", 1, 0, 0)
    view = reader.clause("CAS-1-存货/第五条")
    assert view.version == 2 and "实际成本" in view.text
    assert "实际成本" not in reader.clause("CAS-1-存货/第五条", version=1).text
    assert reader.graph_version() == counts.graph_version + 1


def test_scanned_manual_is_ocred(clean_graph, rendered, service_factory):
    service = service_factory(clean_graph)
    report = service.ingest([rendered["scan"]])
    assert report.ok, report.failed
    doc = report.ingested[0]
    assert doc.ocr_pages == doc.pages >= 2
    expected = [
        m.group(1)
        for ln in rendered["source"].split("第十条")[0].splitlines()
        if (m := CLAUSE_LINE.match(ln))
    ]
    numbers = _active_numbers(clean_graph, doc.doc_id)
    assert numbers == expected
    assert GraphReader(clean_graph).find_text("严禁外传") == []
