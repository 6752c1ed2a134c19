"""`kgqa ask`, `kgqa ask --batch` and `kgqa audit verify`, in-process against the test Neo4j."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_run import kgqa

pytestmark = pytest.mark.neo4j

DOC = "standards/企业会计准则第1号——存货（2006）.md"


@pytest.fixture
def graph(clean_graph, kgqa_env, corpus_dir: Path) -> dict[str, str]:
    assert kgqa(["ingest", str(corpus_dir / DOC)], kgqa_env).returncode == 0
    return kgqa_env


def test_ask_json_has_verified_citations(graph):
    run = kgqa(["ask", "存货应当按照什么进行初始计量？", "--json"], graph)
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["status"] == "VERIFIED"
    assert answer["citations"] and answer["citations"][0]["clause_id"].startswith("CAS-1-存货/")
    cited = answer["citations"][0]
    clause = json.loads(kgqa(["kg", "clause", cited["clause_id"], "--json"], graph).stdout)
    assert clause["text"][cited["quote_start"] : cited["quote_end"]] == cited["quote"]
    assert {"answer_id", "text", "unsupported", "model_id", "graph_version", "timings"} <= set(answer)
    stats = json.loads(kgqa(["kg", "stats", "--json"], graph).stdout)
    assert answer["graph_version"] == stats["graph_version"] > 0


def test_batch_lines_keep_ids_and_report_bad_lines(graph, tmp_path: Path):
    batch = tmp_path / "q.jsonl"
    batch.write_text(
        "\n".join(
            [
                json.dumps({"id": "a", "question": "存货的采购成本包括哪些？"}, ensure_ascii=False),
                json.dumps({"id": "b", "question": ""}),
                "not json",
                json.dumps({"id": "c", "question": "员工试用期最长可以约定几个月？"}, ensure_ascii=False),
                json.dumps({"id": "d", "text": "存货的采购成本包括哪些？"}, ensure_ascii=False),
                json.dumps(["存货的采购成本包括哪些？"], ensure_ascii=False),
                json.dumps({"id": "e", "question": "存货的采购成本包括哪些？", "k": "5"}, ensure_ascii=False),
                json.dumps({"id": "f", "question": "存货的加工成本包括什么？", "k": 2}, ensure_ascii=False),
            ]
        ),
        encoding="utf-8",
    )
    run = kgqa(["ask", "--batch", str(batch), "--json"], graph)
    assert run.returncode == 3  # some lines failed; each bad line is reported and the rest answered
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r.get("id") for r in rows] == ["a", "b", None, "c", "d", None, "e", "f"]
    assert rows[0]["status"] == "VERIFIED" and rows[0]["citations"]
    assert "empty" in rows[1]["error"] and rows[2]["line"] == 3 and "line 3 is not JSON" in rows[2]["error"]
    assert rows[3]["status"] == "NO_EVIDENCE" and not rows[3]["citations"]
    assert rows[4]["error"] == 'line 5 has no "question" field'  # its id is kept
    assert rows[5]["error"] == "line 6 must be a JSON object, not list"
    assert rows[6]["error"] == "k must be a whole number, got '5'"
    assert rows[7]["status"] == "VERIFIED" and 1 <= len(rows[7]["citations"]) <= 2


def test_audit_verify_detects_tampering(graph, clean_graph):
    for q in ("存货应当按照什么进行初始计量？", "存货的加工成本包括什么？"):
        assert kgqa(["ask", q], graph).returncode == 0
    ok = kgqa(["audit", "verify", "--json"], graph)
    report = json.loads(ok.stdout)
    head = clean_graph.execute_query("MATCH (a:Answer {seq: 2}) RETURN a.record_hash AS h").records[0]["h"]
    assert ok.returncode == 0 and report == {
        "ok": True,
        "checked": 2,
        "first_bad_seq": None,
        "first_bad_answer_id": None,
        "reason": None,
        "head_hash": head,  # the last record's hash: an auditor notes it down to compare later
        "journaled": 0,  # kgqa ask closed its service: its answers are in the graph, none in a journal
    }
    clean_graph.execute_query("MATCH (a:Answer {seq: 2}) SET a.answer = a.answer + '（已修改）'")
    bad = kgqa(["audit", "verify"], graph)
    assert bad.returncode == 1 and "record 2" in bad.stdout
