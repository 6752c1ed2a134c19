"""`kgqa ingest`, `kgqa kg stats`, `kgqa kg clause` as a user runs them, against the test Neo4j."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_run import kgqa

pytestmark = pytest.mark.neo4j


def test_ingest_json_exit_codes_and_inspection(clean_graph, kgqa_env, corpus_dir: Path, tmp_path: Path):
    law = corpus_dir / "laws" / "会计法(2024-06-28).md"
    standard = corpus_dir / "standards" / "企业会计准则第14号——收入（2017年修订）.md"
    bad = tmp_path / "scan.exe"
    bad.write_bytes(b"MZ")
    run = kgqa(["ingest", str(law), str(standard), str(bad), "--json"], kgqa_env)
    assert run.returncode == 3, run.stderr
    report = json.loads(run.stdout)
    assert report["ok"] is False
    assert [f["path"] for f in report["failed"]] == [str(bad)]
    assert "unsupported" in report["failed"][0]["reason"]
    by_id = {d["doc_id"]: d for d in report["ingested"]}
    assert set(by_id) == {"会计法", "CAS-14-收入"}
    cas14 = by_id["CAS-14-收入"]
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

    stats = json.loads(kgqa(["kg", "stats", "--json"], kgqa_env).stdout)
    assert stats["labels"]["Document"] >= 2
    assert stats["labels"]["Clause"] == cas14["clauses"] + by_id["会计法"]["clauses"]
    assert stats["graph_version"] == report["graph_version"] > 0

    clause = kgqa(["kg", "clause", "CAS-14-收入/第五条", "--json"], kgqa_env)
    assert clause.returncode == 0, clause.stderr
    view = json.loads(clause.stdout)
    assert view["number"] == "第五条" and "同时满足下列条件" in view["text"]
    assert view["document"]["doc_id"] == "CAS-14-收入"
    assert any("第二章" in s for s in view["section_path"])
    assert view["triples"], "the conditions of 第五条 must be extracted"

    missing = kgqa(["kg", "clause", "CAS-14-收入/第九百条"], kgqa_env)
    assert missing.returncode == 1 and "not in the graph" in missing.stderr

    # all good files again: exit 0, nothing changes
    rerun = kgqa(["ingest", str(law), str(standard), "--json"], kgqa_env)
    assert rerun.returncode == 0, rerun.stderr
    assert {d["status"] for d in json.loads(rerun.stdout)["ingested"]} == {"unchanged"}
    assert json.loads(kgqa(["kg", "stats", "--json"], kgqa_env).stdout) == stats


def test_usage_error_exit_2(kgqa_env):
    assert kgqa(["ingest"], kgqa_env).returncode == 2
    assert kgqa(["kg", "clause"], kgqa_env).returncode == 2


def test_neo4j_down_is_a_clear_error(tmp_path: Path):
    import os

    env = dict(os.environ, KGQA_NEO4J_URI="bolt://127.0.0.1:1", KGQA_HOME=str(tmp_path))
    run = kgqa(["kg", "stats"], env)
    assert run.returncode == 4
    assert "not reachable" in run.stderr and "kgqa neo4j start" in run.stderr


def test_documents_never_retire_each_other_silently(clean_graph, kgqa_env, corpus_dir: Path, tmp_path: Path):
    insurance = corpus_dir / "cas-all" / "企业会计准则第25号——保险合同.md"
    original = corpus_dir / "cas-all" / "企业会计准则第25号——原保险合同（2006）.md"
    run = kgqa(["ingest", str(insurance), str(original), "--json", "--no-index"], kgqa_env)
    assert run.returncode == 0, run.stderr
    by_id = {d["doc_id"]: d for d in json.loads(run.stdout)["ingested"]}
    assert {k: (v["clauses"], v["clauses_retired"]) for k, v in by_id.items()} == {
        "CAS-25-保险合同": (123, 0),
        "CAS-25-原保险合同": (25, 0),
    }

    def active(doc_id: str) -> int:
        rows, _, _ = clean_graph.execute_query(
            "MATCH (c:Clause {doc_id: $d, status: 'active'}) RETURN count(c) AS n", d=doc_id
        )
        return rows[0]["n"]

    assert (active("CAS-25-保险合同"), active("CAS-25-原保险合同")) == (123, 25)

    # another file whose title collides: refused, nothing written, the stored document intact
    impostor = tmp_path / "drafts" / "企业会计准则第25号——保险合同.md"
    impostor.parent.mkdir()
    impostor.write_text(
        "# 企业会计准则第25号——保险合同\n\n第一条 这是一份内部草稿。\n\n第二条 草稿没有别的条款。\n",
        encoding="utf-8",
    )
    stats = json.loads(kgqa(["kg", "stats", "--json"], kgqa_env).stdout)
    refused = kgqa(["ingest", str(impostor), "--json", "--no-index"], kgqa_env)
    assert refused.returncode == 3, refused.stderr
    report = json.loads(refused.stdout)
    assert report["ingested"] == [] and [f["path"] for f in report["failed"]] == [str(impostor)]
    assert "--replace CAS-25-保险合同" in report["failed"][0]["reason"]
    assert str(insurance) in report["failed"][0]["reason"]
    assert json.loads(kgqa(["kg", "stats", "--json"], kgqa_env).stdout) == stats
    assert active("CAS-25-保险合同") == 123

    # --replace names it: a versioned replacement, every retirement recorded as a Change
    replaced = kgqa(
        ["ingest", str(impostor), "--replace", "CAS-25-保险合同", "--json", "--no-index"], kgqa_env
    )
    assert replaced.returncode == 0, replaced.stderr
    (doc,) = json.loads(replaced.stdout)["ingested"]
    # (the stored standard numbers its articles inside an attachment: 附件_2/第一条)
    assert (doc["status"], doc["clauses_added"], doc["clauses_retired"]) == ("replaced", 2, 123)
    assert (active("CAS-25-保险合同"), active("CAS-25-原保险合同")) == (2, 25)
    rows, _, _ = clean_graph.execute_query(
        "MATCH (c:Change)-[:ON]->(n) WHERE c.op IN ['clause.retire', 'document.replace'] "
        "AND (n.doc_id = 'CAS-25-保险合同') RETURN c.op AS op, count(*) AS n"
    )
    assert {r["op"]: r["n"] for r in rows} == {"clause.retire": 123, "document.replace": 1}

    # an id that no file of the run produces is a failure, not a silent no-op
    unused = kgqa(["ingest", str(original), "--replace", "CAS-99-不存在", "--json", "--no-index"], kgqa_env)
    assert unused.returncode == 3
    assert [f["path"] for f in json.loads(unused.stdout)["failed"]] == ["--replace CAS-99-不存在"]


def test_links_in_a_folder_are_not_followed(clean_graph, kgqa_env, tmp_path: Path):
    import os

    folder = tmp_path / "manuals"
    folder.mkdir()
    (folder / "费用报销手册.md").write_text(
        "# 费用报销手册\n\n第一条 报销应当取得合法票据。\n", encoding="utf-8"
    )
    os.symlink("/etc/passwd", folder / "x.txt")
    os.mkfifo(folder / "pipe.md")
    run = kgqa(["ingest", str(folder), "--json", "--no-index"], kgqa_env)
    assert run.returncode == 0, run.stderr  # warnings, not failures
    report = json.loads(run.stdout)
    assert [d["doc_id"] for d in report["ingested"]] == ["费用报销手册"]
    assert {Path(s["path"]).name: s["reason"] for s in report["skipped"]} == {
        "pipe.md": "a FIFO, not a regular file: skipped",
        "x.txt": "symbolic link to /etc/passwd not followed",
    }
    text = kgqa(["ingest", str(folder), "--no-index"], kgqa_env)
    assert "skipped" in text.stderr and "x.txt" in text.stderr
    passwd_line = Path("/etc/passwd").read_text().splitlines()[0]
    rows, _, _ = clean_graph.execute_query(
        "MATCH (n) UNWIND keys(n) AS k WITH n[k] AS v WHERE v IS :: STRING AND v CONTAINS $s RETURN count(*) AS n",
        s=passwd_line.split(":")[0] + ":x:",
    )
    assert rows[0]["n"] == 0


def test_a_file_past_its_deadline_fails_and_the_batch_goes_on(clean_graph, kgqa_env, tmp_path: Path):
    from scripts.hostile_files import make_long_scan

    folder = tmp_path / "batch"
    folder.mkdir()
    make_long_scan(folder / "a-scan.pdf", pages=200)
    (folder / "b-费用报销手册.md").write_text(
        "# 费用报销手册\n\n第一条 报销应当取得合法票据。\n", encoding="utf-8"
    )
    env = dict(kgqa_env, KGQA_INGEST__LIMITS__PARSE_TIMEOUT_S="3")
    run = kgqa(["ingest", str(folder), "--json", "--no-index"], env)
    assert run.returncode == 3, run.stderr
    report = json.loads(run.stdout)
    assert [Path(f["path"]).name for f in report["failed"]] == ["a-scan.pdf"]
    assert "parsing took longer than 3 s (KGQA_INGEST__LIMITS__PARSE_TIMEOUT_S)" in report["failed"][0]["reason"]
    (doc,) = report["ingested"]
    assert doc["doc_id"] == "费用报销手册" and doc["clauses"] == 1
    assert doc["peak_memory_mb"] > 0 and doc["parse_seconds"] > 0
