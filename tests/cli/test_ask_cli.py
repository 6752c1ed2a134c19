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
    """One bad line is that line's error row (with its id where it has one); the rest are answered."""

    def line(obj) -> bytes:
        return json.dumps(obj, ensure_ascii=False).encode("utf-8")

    batch = tmp_path / "q.jsonl"
    batch.write_bytes(
        b"\n".join(
            [
                b"\xef\xbb\xbf" + line({"id": "a", "question": "存货的采购成本包括哪些？"}),  # a BOM
                line({"id": "b", "question": ""}),
                b"not json",
                line({"id": "c", "question": "员工试用期最长可以约定几个月？"}),
                line({"id": "d", "text": "存货的采购成本包括哪些？"}),
                line(["存货的采购成本包括哪些？"]),
                line({"id": "e", "question": "存货的采购成本包括哪些？", "k": "5"}),
                line({"id": "f", "question": "存货的加工成本包括什么？", "k": 1}),
                b'{"id": "g", "question": "\xff\xfe"}',
                json.dumps({"id": "\ud800", "question": "存货的加工成本包括什么？", "k": None}).encode(),
            ]
        )
    )
    run = kgqa(["ask", "--batch", str(batch), "--json", "--k", "1"], graph)
    assert run.returncode == 3  # some lines failed
    rows = [json.loads(text) for text in run.stdout.splitlines()]
    assert [r.get("id") for r in rows] == ["a", "b", None, "c", "d", None, "e", "f", None, "\ud800"]
    assert rows[0]["status"] == "VERIFIED" and rows[0]["citations"]
    errors = {r["line"]: r["error"] for r in rows if "error" in r}
    assert errors[2] == "question is empty" and errors[3].startswith("line 3 is not JSON: ")
    assert errors[5] == 'line 5 has no "question" field'  # its id is kept (rows[4])
    assert errors[6] == "line 6 must be a JSON object, not an array"
    assert errors[7] == 'k must be a whole number, got a string "5"'
    assert errors[9] == "line 9 is not UTF-8 (byte 25)"
    assert sorted(errors) == [2, 3, 5, 6, 7, 9]
    assert rows[3]["status"] == "NO_EVIDENCE" and not rows[3]["citations"]
    for answered in (rows[7], rows[9]):  # "k": 1 and "k": null (the --k given) retrieve one clause
        assert answered["status"] == "VERIFIED"
        assert len({c["clause_id"] for c in answered["citations"]}) == 1
    # which k a line gets, seen through the service's range check: a line's own k wins over --k,
    # and "k": null is the --k given (not the server's default)
    strict = tmp_path / "k.jsonl"
    strict.write_bytes(
        line({"id": "own", "question": "存货的加工成本包括什么？", "k": 2})
        + b"\n"
        + line({"id": "cli", "question": "存货的加工成本包括什么？", "k": None})
    )
    own, cli = (
        json.loads(t)
        for t in kgqa(["ask", "--batch", str(strict), "--json", "--k", "99"], graph).stdout.splitlines()
    )
    assert own["status"] == "VERIFIED" and cli["error"] == "k must be between 1 and 20, got 99"


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
