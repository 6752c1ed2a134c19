"""The data of an incremental retrain: what to teach, what to replay, what to test.

From the active model's dataset (the *old* one) and the dataset rebuilt for the clauses changed
since (the *new* one, :meth:`training.dataset.DatasetBuilder.build` with ``since``):

* ``chat/train.jsonl``: the regenerated pairs of changed and new clauses (their chat records of
  every teaching split), one refusal per old question of a retired clause ("this rule no longer
  applies"), and a seeded replay sample of old training pairs of untouched clauses;
* ``chat/val.jsonl``: old validation pairs of untouched clauses (SFT needs a validation split);
* ``eval/changed.jsonl`` (does the model state the new values?), ``eval/retired.jsonl`` (does it
  refuse?), and the old test sets less every record of a touched clause (``eval/old_<name>.jsonl``):
  a record whose reference states an old value is no longer a fair test.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kg.delta import GraphDelta
from kg.prompting import build_system_prompt
from kg.verifier import REFUSAL_TEXT
from kgqa.errors import ConfigError
from training.dataset import MANIFEST_FILE, PAIRS_FILE, load_manifest
from training.run_artifacts import read_json, read_jsonl

#: The answer taught for a question about a retired clause: the refusal, saying why.
RETIRED_ANSWER = f"{REFUSAL_TEXT}（该条款已废止，不再适用）。"
TEACHING_SPLITS = ("train", "val", "test_unseen")
OLD_TEST_SETS = ("test_paraphrase", "test_unseen", "test_refusal")


@dataclass(frozen=True)
class TrainingSet:
    """Counts of what :func:`build_training_set` wrote (for the job's result and the bench)."""

    regenerated: int
    refusals: int
    replayed: int
    train: int
    val: int
    eval_changed: int
    eval_retired: int
    eval_old: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    return n


def dataset_of_adapter(adapter_dir: Path) -> Path:
    """The full dataset folder an adapter was trained from (read from its ``provenance.json``).

    A retrained adapter was trained on a delta folder whose manifest names the full dataset
    (``dataset_dir``); a first adapter on the full dataset itself.

    Raises:
        ConfigError: the adapter records no dataset, or the folder is gone.
    """
    prov_path = Path(adapter_dir) / "provenance.json"
    if not prov_path.is_file():
        raise ConfigError(f"{adapter_dir}: no provenance.json; the active model's dataset is unknown")
    path = (read_json(prov_path).get("dataset") or {}).get("path")
    if not path:
        raise ConfigError(f"{prov_path} names no dataset; the active model's dataset is unknown")
    folder = Path(path)
    manifest = load_manifest(folder)
    if manifest.get("dataset_dir"):
        folder = Path(manifest["dataset_dir"])
    if not (folder / PAIRS_FILE).is_file():
        raise ConfigError(f"{folder}: the active model's dataset is gone (no {PAIRS_FILE}); rebuild it")
    return folder


def seed_incremental_build(old_dataset: Path, out_dir: Path) -> None:
    """Put the old build's pairs where an incremental build (``since``) carries them over from."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(old_dataset / PAIRS_FILE, out_dir / PAIRS_FILE)


def _touches(record: dict[str, Any], ids: set[str]) -> bool:
    return bool(ids & set(record.get("gold_clause_ids") or []))


def pairs_touching(dataset: Path, ids: Sequence[str]) -> int:
    """How many pairs of a built dataset teach one of ``ids`` (the dry run's figure)."""
    wanted = set(ids)
    return sum(1 for p in read_jsonl(dataset / PAIRS_FILE) if wanted & set(p.get("gold") or {}))


def refusal_record(old: dict[str, Any], graph_version: int) -> dict[str, Any]:
    """The refusal pair for an old question about a retired clause: no clause to quote, so refuse."""
    question = old.get("question") or next(m["content"] for m in old["messages"] if m["role"] == "user")
    return {
        "messages": [
            {"role": "system", "content": build_system_prompt([])},
            {"role": "user", "content": question},
            {"role": "assistant", "content": RETIRED_ANSWER},
        ],
        "id": f"retired-{old.get('id')}",
        "question": question,
        "reference": RETIRED_ANSWER,
        "qtype": "retired",
        "answerable": False,
        "gold_clause_ids": [],
        "clause_versions": {},
        "retired_clause_ids": list(old.get("gold_clause_ids") or []),
        "graph_version": graph_version,
        "generator": "retrain:retired",
        "split": "train",
        "contexts": [],
    }


def build_training_set(
    new_dataset: Path,
    old_dataset: Path,
    delta: GraphDelta,
    out_dir: Path,
    *,
    replay_ratio: float,
    replay_min: int,
    seed: int,
) -> TrainingSet:
    """Write the delta training folder (chat splits, eval sets, manifest) into ``out_dir``."""
    taught = set(delta.ids("changed", "new"))
    retired = set(delta.ids("retired"))
    touched = taught | retired
    fresh: dict[str, dict[str, Any]] = {}
    for split in TEACHING_SPLITS:
        for rec in read_jsonl(new_dataset / "chat" / f"{split}.jsonl"):
            if _touches(rec, taught):
                fresh.setdefault(rec["id"], rec)
    changed_eval: dict[str, dict[str, Any]] = dict(fresh)
    for rec in read_jsonl(new_dataset / "chat" / "test_paraphrase.jsonl"):
        if _touches(rec, taught):
            changed_eval.setdefault(rec["id"], rec)

    old_records: dict[str, dict[str, Any]] = {}
    for split in (*TEACHING_SPLITS, "test_paraphrase"):
        for rec in read_jsonl(old_dataset / "chat" / f"{split}.jsonl"):
            if _touches(rec, retired) and rec.get("question"):
                old_records.setdefault(rec["question"], rec)
    refusals = [refusal_record(rec, delta.graph_version) for rec in old_records.values()]

    rng = random.Random(seed)
    old_train = [r for r in read_jsonl(old_dataset / "chat" / "train.jsonl") if not _touches(r, touched)]
    n_replay = min(len(old_train), max(replay_min, round(replay_ratio * (len(fresh) + len(refusals)))))
    replay = rng.sample(old_train, n_replay)
    old_val = [r for r in read_jsonl(old_dataset / "chat" / "val.jsonl") if not _touches(r, touched)]
    val = rng.sample(old_val, min(len(old_val), max(2, n_replay // 4))) or replay[:2]

    train = [*fresh.values(), *refusals, *replay]
    rng.shuffle(train)
    write_jsonl(out_dir / "chat" / "train.jsonl", train)
    write_jsonl(out_dir / "chat" / "val.jsonl", val)
    write_jsonl(
        out_dir / "eval" / "changed.jsonl", [r for r in changed_eval.values() if r.get("answerable", True)]
    )
    write_jsonl(out_dir / "eval" / "retired.jsonl", refusals)
    old_counts = {}
    for name in OLD_TEST_SETS:
        kept = [r for r in read_jsonl(old_dataset / "chat" / f"{name}.jsonl") if not _touches(r, touched)]
        old_counts[name] = write_jsonl(out_dir / "eval" / f"old_{name.removeprefix('test_')}.jsonl", kept)

    manifest = load_manifest(new_dataset)
    (out_dir / MANIFEST_FILE).write_text(
        json.dumps(
            {
                "graph_version": manifest.get("graph_version"),
                "dataset_hash": manifest.get("dataset_hash"),
                "dataset_dir": str(Path(new_dataset).resolve()),
                "parent_dataset_dir": str(Path(old_dataset).resolve()),
                "since": delta.since,
                "delta": {
                    "changed": delta.ids("changed"),
                    "new": delta.ids("new"),
                    "retired": sorted(retired),
                },
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    return TrainingSet(
        regenerated=len(fresh),
        refusals=len(refusals),
        replayed=len(replay),
        train=len(train),
        val=len(val),
        eval_changed=sum(1 for r in changed_eval.values() if r.get("answerable", True)),
        eval_retired=len(refusals),
        eval_old=old_counts,
    )


__all__ = [
    "RETIRED_ANSWER",
    "TrainingSet",
    "build_training_set",
    "dataset_of_adapter",
    "pairs_touching",
    "refusal_record",
    "seed_incremental_build",
    "write_jsonl",
]
