"""`kgqa kg edit ...`, `kg history`, `kg revert`, `kg version`, `kg impact` as a script runs them,
against the test Neo4j with a really ingested law."""

from __future__ import annotations

import json

import pytest
from cli_run import kgqa, kgqa_json

pytestmark = pytest.mark.neo4j

LAW = "laws/招标投标法(2017-12-27).md"
CLAUSE = "招标投标法/第四十六条"


def test_edit_history_revert_and_impact_from_the_command_line(clean_graph, kgqa_env, corpus_dir):
    from pathlib import Path

    from kg.registry import ModelRegistry, ModelVersion

    assert kgqa(["ingest", str(corpus_dir / LAW), "--no-index"], kgqa_env).returncode == 0
    trained_at = kgqa_json(["kg", "stats"], kgqa_env)["graph_version"]
    registry = ModelRegistry(clean_graph)
    registry.register(
        ModelVersion("sft-before-edit", "sft", "/models/base", "/runs/a", graph_version=trained_at)
    )
    dataset = Path(kgqa_env["KGQA_HOME"]) / "dataset"
    dataset.mkdir(parents=True)
    pairs = [
        {"pair_id": "p1", "question": "多少日内订立书面合同？", "gold": {CLAUSE: 1}, "split": "train"},
        {"pair_id": "p2", "question": "别的问题", "gold": {"招标投标法/第一条": 1}, "split": "train"},
    ]
    (dataset / "pairs.jsonl").write_text(
        "\n".join(json.dumps(p, ensure_ascii=False) for p in pairs), encoding="utf-8"
    )
    assert kgqa_json(["kg", "version", CLAUSE], kgqa_env) == {"target_id": CLAUSE, "kind": "clause", "version": 1}
    clause = kgqa_json(["kg", "clause", CLAUSE], kgqa_env)
    new_text = clause["text"].replace("三十日", "十五日")
    edit = ["kg", "edit", "clause-text", CLAUSE, "--text", new_text, "--reason", "法律修订"]
    done = kgqa_json([*edit, "--expected-version", "1"], kgqa_env)
    assert (done["op"], done["version"]) == ("clause.edit", 2)
    stale = kgqa([*edit, "--expected-version", "1"], kgqa_env)
    assert stale.returncode == 5 and "current_version=2" in stale.stderr

    refused = kgqa(["kg", "edit", "triple", "add", CLAUSE, "--subject", "书面合同", "--predicate", "期限",
                     "--object", "20日", "--reason", "补充", "--expected-version", "2"], kgqa_env)  # fmt: skip
    assert refused.returncode == 1 and "20日" in refused.stderr
    not_object = kgqa(["kg", "edit", "triple", "add", CLAUSE, "--subject", "书面合同", "--predicate", "期限",
                        "--object", "20日", "--reason", "补充", "--expected-version", "2",
                        "--qualifiers", "[1]"], kgqa_env)  # fmt: skip
    assert not_object.returncode == 1 and "--qualifiers must be a JSON object" in not_object.stderr
    forced = kgqa_json(["kg", "edit", "triple", "add", CLAUSE, "--subject", "书面合同", "--predicate", "期限",
                    "--object", "20日", "--reason", "依据通知", "--expected-version", "2", "--force"], kgqa_env)  # fmt: skip
    assert forced["asserted"] is True

    history = kgqa_json(["kg", "history", CLAUSE], kgqa_env)
    assert [c["op"] for c in history] == ["clause.add", "clause.edit"]
    assert history[-1]["actor"].startswith("cli:") and history[-1]["reason"] == "法律修订"

    impact = kgqa_json(["kg", "impact", CLAUSE], kgqa_env)
    assert impact["clause_versions"] == {CLAUSE: 2} and impact["last_change"] == done["seq"] + 1
    assert impact["dataset_found"] is True and impact["index_caught_up"] is False
    assert [(p["pair_id"], p["clause_version"], p["stale"]) for p in impact["pairs"]] == [("p1", 1, True)]
    assert [m["model_id"] for m in impact["stale_models"]] == ["sft-before-edit"]
    registry.register(
        ModelVersion("sft-after-edit", "sft", "/models/base", "/runs/b", graph_version=done["seq"] + 1)
    )
    impact = kgqa_json(["kg", "impact", CLAUSE], kgqa_env)
    assert [m["model_id"] for m in impact["stale_models"]] == ["sft-before-edit"]
    text = kgqa(["kg", "impact", CLAUSE], kgqa_env)
    assert text.returncode == 0 and "sft-before-edit" in text.stdout and "caught up: no" in text.stdout

    back = kgqa_json(["kg", "revert", str(done["seq"]), "--reason", "撤销"], kgqa_env)
    assert (back["op"], back["version"]) == ("clause.revert", 3)
    assert "三十日" in kgqa_json(["kg", "clause", CLAUSE], kgqa_env)["text"]
    text = kgqa(["kg", "history", CLAUSE], kgqa_env)
    assert text.returncode == 0 and "撤销" in text.stdout and "法律修订" in text.stdout


def test_reingest_over_a_hand_edit_lists_the_conflict_and_exits_3(
    clean_graph, kgqa_env, corpus_dir, tmp_path
):
    source = tmp_path / "招标投标法(2017-12-27).md"
    original = (corpus_dir / LAW).read_text(encoding="utf-8")
    source.write_text(original, encoding="utf-8")
    assert kgqa(["ingest", str(source), "--no-index"], kgqa_env).returncode == 0
    text = kgqa_json(["kg", "clause", CLAUSE], kgqa_env)["text"]
    edit = ["kg", "edit", "clause-text", CLAUSE, "--text", text.replace("三十日", "十五日")]
    kgqa_json([*edit, "--reason", "法律修订", "--expected-version", "1"], kgqa_env)

    source.write_text(original.replace("三十日内，按照招标文件", "二十日内，按照招标文件"), encoding="utf-8")
    run = kgqa(["ingest", str(source), "--no-index"], kgqa_env)
    assert run.returncode == 3, run.stderr
    assert "conflict" in run.stderr and CLAUSE in run.stderr and "pending as v3" in run.stderr
    clause = kgqa_json(["kg", "clause", CLAUSE], kgqa_env)
    assert clause["version"] == 2 and "十五日" in clause["text"]
    pending = kgqa_json(["kg", "clause", CLAUSE, "--version", "3"], kgqa_env)
    assert pending["status"] == "pending" and "二十日" in pending["text"]

    source.write_text(
        original.replace("三十日内，按照招标文件", "二十五日内，按照招标文件"), encoding="utf-8"
    )
    run = kgqa(["ingest", str(source), "--no-index", "--json"], kgqa_env)
    assert run.returncode == 3
    (conflict,) = json.loads(run.stdout)["conflicts"]
    assert conflict == {"clause_id": CLAUSE, "edited_version": 2, "pending_version": 4, "policy": "keep"}
