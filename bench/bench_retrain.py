"""Cost grows with the change, not with the corpus: an incremental retrain vs a full retrain.

In one run on the tiny offline model: the sample manuals are ingested into a Neo4j of our own, a
tiny base is pretrained on them, a dataset is built and a LoRA adapter trained on it (the parent,
activated). Then one clause changes (三十日 -> 十五日 in the expense guide, re-ingested) and the
same corpus is retrained twice:

* incremental: the retrain job (training/retrain.py): pairs regenerated for the changed clause
  only, replay of old pairs, LoRA continued from the parent, evaluation and gate included (the
  parent's and the new adapter's evaluations are the job's own, read from its folder);
* full: a fresh dataset build of the whole graph and a fresh LoRA SFT from the base.

Both train for the same number of epochs over their own training set with the same SFT config.
It prints pairs generated, training steps, wall times, the changed clause's key-fact accuracy and
the old test sets' metrics after each (the parent's too), and each retrain's change against the
parent on the old sets with its paired bootstrap interval (over the same questions; starred when
it excludes 0: a few dozen questions cannot show a smaller change), as a table or ``--json``.

    .venv/bin/python bench/bench_retrain.py [--epochs 3] [--pretrain-steps 300] [--eval-limit 16]
        [--replay-ratio R] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from kg.local_server import free_port

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "training" / "configs"
GUIDE = "费用报销操作指引.md"
OLD, NEW = "费用发生后三十日内", "费用发生后十五日内"


def _ingest(settings, driver, folder: Path) -> None:
    from kgqa.wiring import build_ingest_service

    report = build_ingest_service(settings, driver).ingest([folder])
    if not report.ok:
        raise SystemExit(f"ingest failed: {report.failed}")


def _states_new_value(rows: list[dict]) -> float | None:
    """Share of changed-clause answers (``rows`` of the ``changed`` test set) that state 十五日 (or
    15日) where the reference does."""
    rows = [r for r in rows if "十五日" in (r.get("reference") or "")]
    if not rows:
        return None
    return round(sum(("十五日" in r["prediction"] or "15日" in r["prediction"]) for r in rows) / len(rows), 4)


def run(
    uri: str,
    work: Path,
    epochs: float,
    pretrain_steps: int,
    eval_limit: int,
    log=print,
    replay_ratio: float | None = None,
) -> dict:
    from neo4j import GraphDatabase

    from kg.registry import ModelRegistry
    from kgqa.settings import Settings
    from kgqa.wiring import build_generator
    from training.datagen.source import GraphSource
    from training.dataset import DatasetBuilder
    from training.dataset_config import DatasetConfig
    from training.evaluate import read_predictions
    from training.metrics.bootstrap import paired_difference
    from training.pretrain import TinyBaseConfig, build_pretrained_base
    from training.registration import register_run
    from training.retrain import RetrainRunner
    from training.retrain_config import RetrainConfig
    from training.run_artifacts import read_jsonl
    from training.sft import SftRunner
    from training.sft_config import SftConfig

    manuals = work / "manuals"
    shutil.copytree(REPO / "samples" / "manuals", manuals)
    settings = Settings(neo4j_uri=uri, home=work / "home")
    sft_cfg = SftConfig.load(CONFIGS / "sft-tiny.yaml").with_overrides(max_steps=-1, num_train_epochs=epochs)
    data_cfg = DatasetConfig.load(CONFIGS / "dataset-tiny.yaml")
    with GraphDatabase.driver(uri, auth=None, notifications_min_severity="OFF") as driver:
        t = time.perf_counter()
        _ingest(settings, driver, manuals)
        log(f"ingested the sample manuals in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        build_pretrained_base(
            work / "base",
            [REPO / "samples" / "src", manuals],
            TinyBaseConfig(steps=pretrain_steps),
            progress=False,
        )
        log(f"pretrained the tiny base ({pretrain_steps} steps) in {time.perf_counter() - t:.0f} s")
        DatasetBuilder.from_config(data_cfg, GraphSource(driver)).build(work / "ds0")
        t = time.perf_counter()
        SftRunner(sft_cfg, progress=False).run(work / "base", work / "ds0", work / "parent")
        log(f"trained the parent adapter in {time.perf_counter() - t:.0f} s")
        registry = ModelRegistry(driver)
        parent = register_run(registry, work / "parent", "sft")
        registry.activate(parent.model_id)

        guide = manuals / GUIDE
        text = guide.read_text(encoding="utf-8")
        assert OLD in text
        guide.write_text(text.replace(OLD, NEW), encoding="utf-8")
        _ingest(settings, driver, manuals)

        config = RetrainConfig(
            dataset_config=CONFIGS / "dataset-tiny.yaml",
            sft_config=CONFIGS / "sft-tiny.yaml",
            eval_config=CONFIGS / "eval-tiny.yaml",
            epochs=epochs,
            save_steps=50,
            eval_limit=eval_limit,
            eval_max_new_tokens=64,
        )
        if replay_ratio is not None:
            config.replay_ratio = replay_ratio
        runner = RetrainRunner(driver, config, work / "home" / "jobs", build_generator)
        plan = runner.plan()
        log(f"delta: {plan.changed} changed, {plan.new} new, {plan.retired} retired")
        t = time.perf_counter()
        job = runner.run(runner.create(None, "bench").job_id)
        inc_seconds = time.perf_counter() - t
        log(f"incremental job {job.state.value} in {inc_seconds:.0f} s")
        folder = runner.job_dir(job.job_id)
        data = folder / "train_data"

        t = time.perf_counter()
        full = DatasetBuilder.from_config(data_cfg, GraphSource(driver)).build(work / "ds_full")
        full_data_s = time.perf_counter() - t
        t = time.perf_counter()
        full_sft = SftRunner(sft_cfg, progress=False).run(work / "base", work / "ds_full", work / "full")
        full_train_s = time.perf_counter() - t
        log(f"full retrain: dataset {full_data_s:.0f} s, training {full_train_s:.0f} s")
        full_records = len(read_jsonl(work / "ds_full" / "chat" / "train.jsonl"))

        # The job's evaluate stage already scored the parent and the new adapter on these test
        # sets (same base, data and eval config): read them; only the full retrain is scored here.
        inc = job.result
        dirs = {"parent": folder / "eval" / "parent", "incremental": folder / "eval" / "new"}
        evals = {"parent": dict(inc["evaluate"]["parent"]), "incremental": dict(inc["evaluate"]["new"])}
        dirs["full"] = work / "eval" / "full"
        t = time.perf_counter()
        evals["full"] = runner.evaluate(work / "base", work / "full", data, dirs["full"])
        log(f"evaluated the full retrain in {time.perf_counter() - t:.0f} s")
        rows = {name: read_predictions(out) for name, out in dirs.items()}
        for name in dirs:
            evals[name]["states_new_value"] = _states_new_value(rows[name].get("changed", []))

    keys = ("key_fact_accuracy", "token_f1", "hallucination_rate")
    return {
        "corpus": {"clauses_changed": plan.changed, "graph_version": plan.graph_version},
        "epochs": epochs,
        "incremental": {
            "state": job.state.value,
            "pairs_generated": inc["dataset"]["pairs_generated"],
            "training_records": inc["dataset"]["training_set"]["train"],
            "training_steps": inc["train"]["steps"],
            "dataset_s": inc["dataset"]["seconds"],
            "train_s": inc["train"]["seconds"],
            "evaluate_s": inc["evaluate"]["seconds"],
            "job_total_s": round(inc_seconds, 1),
            "gate_passed": inc["evaluate"]["gate"]["passed"],
        },
        "full": {
            "pairs_generated": full.pairs,
            "training_records": full_records,
            "training_steps": full_sft.steps,
            "dataset_s": round(full_data_s, 1),
            "train_s": round(full_train_s, 1),
            "total_s": round(full_data_s + full_train_s, 1),
        },
        "changed_clause": {
            name: {
                "key_fact_accuracy": e.get("changed", {}).get("key_fact_accuracy"),
                "states_new_value": e["states_new_value"],
            }
            for name, e in evals.items()
        },
        "old_test_sets": {
            name: {
                s: {k: a.get(k) for k in keys}
                for s, a in e.items()
                if s.startswith("old_") and isinstance(a, dict)
            }
            for name, e in evals.items()
        },
        # each retrain against the parent, paired over the same old questions: a change whose
        # interval holds 0 is no evidence that the old sets got worse (or better)
        "old_test_sets_change": {
            name: {
                s: {k: paired_difference(rows["parent"].get(s, []), rows[name].get(s, []), k) for k in keys}
                for s in rows["parent"]
                if s.startswith("old_")
            }
            for name in ("incremental", "full")
        },
    }


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def _fmt_change(d: dict | None) -> str:
    """``-0.125 [-0.38, 0.12]``, starred when the interval excludes 0."""
    if d is None:
        return "-"
    star = "*" if d["significant"] else ""
    return f"{d['delta']:+.3f} [{d['low']:+.2f}, {d['high']:+.2f}]{star}"


def print_table(r: dict) -> None:
    inc, full = r["incremental"], r["full"]
    rows = [
        ("pairs generated", inc["pairs_generated"], full["pairs_generated"]),
        ("training records", inc["training_records"], full["training_records"]),
        ("training steps", inc["training_steps"], full["training_steps"]),
        ("dataset s", inc["dataset_s"], full["dataset_s"]),
        ("training s", inc["train_s"], full["train_s"]),
        ("dataset + training s", round(inc["dataset_s"] + inc["train_s"], 1), full["total_s"]),
        ("job total s (incl. eval of 2 models)", inc["job_total_s"], "-"),
    ]
    print(f"\nOne changed clause {r['corpus']['clauses_changed']}, {r['epochs']} epochs each\n")
    print(f"{'':40}{'incremental':>14}{'full':>12}{'ratio':>8}")
    for name, a, b in rows:
        ratio = f"{b / a:.1f}x" if isinstance(a, int | float) and isinstance(b, int | float) and a else ""
        print(f"{name:40}{_fmt(a):>14}{_fmt(b):>12}{ratio:>8}")
    print(f"\n{'changed clause':40}{'key-fact acc':>14}{'says 十五日':>12}")
    for name, c in r["changed_clause"].items():
        print(f"{name:40}{_fmt(c['key_fact_accuracy']):>14}{_fmt(c['states_new_value']):>12}")
    print(f"\n{'old test sets':40}{'key-fact':>10}{'token F1':>10}{'halluc.':>10}")
    for name, sets in r["old_test_sets"].items():
        for s, m in sets.items():
            print(
                f"{name + ' / ' + s:40}{_fmt(m['key_fact_accuracy']):>10}{_fmt(m['token_f1']):>10}"
                f"{_fmt(m['hallucination_rate']):>10}"
            )
    print(f"\n{'change vs parent (95% paired interval)':40}{'key-fact':>22}{'token F1':>22}{'halluc.':>22}")
    for name, sets in r["old_test_sets_change"].items():
        for s, m in sets.items():
            cells = "".join(
                f"{_fmt_change(m.get(k)):>22}"
                for k in ("key_fact_accuracy", "token_f1", "hallucination_rate")
            )
            print(f"{name + ' / ' + s:40}{cells}")
    print(f"\ngate passed: {inc['gate_passed']}; job state: {inc['state']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", help="An existing Neo4j to use (it is written to!); default: our own.")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--pretrain-steps", type=int, default=300)
    parser.add_argument("--eval-limit", type=int, default=16)
    parser.add_argument(
        "--replay-ratio", type=float, help="Old pairs replayed per new pair (default: the retrain config's)."
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from kgqa.logging import configure_logging

    configure_logging()  # logs to stderr: stdout carries the table or the JSON alone
    log = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as tmp:
        work = Path(tmp)
        server = None
        uri = args.uri
        if uri is None:
            from kg.local_server import LocalNeo4j

            server = LocalNeo4j(work / "neo4j", free_port(), heap_mb=1024, pagecache_mb=128)
            server.start(timeout=240)
            uri = server.bolt_uri
        try:
            result = run(uri, work, args.epochs, args.pretrain_steps, args.eval_limit, log, args.replay_ratio)
        finally:
            if server is not None:
                server.stop()
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
