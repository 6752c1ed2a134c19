"""`kgqa ingest`, `kgqa kg stats`, `kgqa kg clause` as a user runs them, against the test Neo4j."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.neo4j


def _kgqa(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kgqa", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_ingest_json_exit_codes_and_inspection(clean_graph, kgqa_env, corpus_dir: Path, tmp_path: Path):
    law = corpus_dir / "laws" / "会计法(2024-06-28).md"
    standard = corpus_dir / "standards" / "企业会计准则第14号——收入（2017年修订）.md"
    bad = tmp_path / "scan.exe"
    bad.write_bytes(b"MZ")
    run = _kgqa(["ingest", str(law), str(standard), str(bad), "--json"], kgqa_env)
    assert run.returncode == 3, run.stderr
    report = json.loads(run.stdout)
    assert report["ok"] is False
    assert [f["path"] for f in report["failed"]] == [str(bad)]
    assert "unsupported" in report["failed"][0]["reason"]
    by_id = {d["doc_id"]: d for d in report["ingested"]}
    assert set(by_id) == {"会计法", "CAS-14"}
    cas14 = by_id["CAS-14"]
    assert cas14["clauses"] >= 44 and cas14["sections"] >= 5 and cas14["triples"] > 20
    assert {
        "doc_id",
        "title",
        "pages",
        "sections",
        "clauses",
        "tables",
        "triples",
        "ocr_pages",
        "redactions",
        "warnings",
    } <= set(cas14)

    stats = json.loads(_kgqa(["kg", "stats", "--json"], kgqa_env).stdout)
    assert stats["labels"]["Document"] >= 2
    assert stats["labels"]["Clause"] == cas14["clauses"] + by_id["会计法"]["clauses"]
    assert stats["graph_version"] == report["graph_version"] > 0

    clause = _kgqa(["kg", "clause", "CAS-14/第五条", "--json"], kgqa_env)
    assert clause.returncode == 0, clause.stderr
    view = json.loads(clause.stdout)
    assert view["number"] == "第五条" and "同时满足下列条件" in view["text"]
    assert view["document"]["doc_id"] == "CAS-14"
    assert any("第二章" in s for s in view["section_path"])
    assert view["triples"], "the conditions of 第五条 must be extracted"

    missing = _kgqa(["kg", "clause", "CAS-14/第九百条"], kgqa_env)
    assert missing.returncode == 1 and "not in the graph" in missing.stderr

    # all good files again: exit 0, nothing changes
    rerun = _kgqa(["ingest", str(law), str(standard), "--json"], kgqa_env)
    assert rerun.returncode == 0, rerun.stderr
    assert {d["status"] for d in json.loads(rerun.stdout)["ingested"]} == {"unchanged"}
    assert json.loads(_kgqa(["kg", "stats", "--json"], kgqa_env).stdout) == stats


def test_usage_error_exit_2(kgqa_env):
    assert _kgqa(["ingest"], kgqa_env).returncode == 2
    assert _kgqa(["kg", "clause"], kgqa_env).returncode == 2


def test_neo4j_down_is_a_clear_error(tmp_path: Path):
    import os

    env = dict(os.environ, KGQA_NEO4J_URI="bolt://127.0.0.1:1", KGQA_HOME=str(tmp_path))
    run = _kgqa(["kg", "stats"], env)
    assert run.returncode == 4
    assert "not reachable" in run.stderr and "kgqa neo4j start" in run.stderr
