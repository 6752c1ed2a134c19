"""Dataset exports: TRL chat JSONL, the GRPO prompt set, and LLaMA-Factory Alpaca/ShareGPT.

Every record is built from the same prompt the service uses (``kg.prompting``), so a model
trained on it sees the layout it will serve with, and every record carries its provenance (gold
clause ids and versions, graph version, template, generator) plus the prompt's clauses
(``contexts``), so evaluation and GRPO can verify answers without the graph.

What goes where:

* ``chat/train.jsonl``, ``chat/val.jsonl``: SFT-band pairs of the split (the teaching set).
* ``chat/test_unseen.jsonl``, ``chat/test_paraphrase.jsonl``: every kept (SFT or GRPO band)
  answerable pair of the split; a test set measures answers, and a verified reference is a fair
  target. ``chat/test_refusal.jsonl``: the unanswerable pairs of the test splits (the model must
  answer with the refusal).
* ``grpo/prompts.jsonl``: GRPO-band train pairs, plus unanswerable train pairs up to
  ``grpo_unanswerable_share`` of the set (the abstention the reward must keep rewarding); those
  unanswerable pairs leave ``chat/train.jsonl``, so no prompt is both taught and explored.
  ``grpo/eval.jsonl``: the GRPO-band and unanswerable pairs of the validation split, GRPO's own
  held-out prompts.
* ``llamafactory/``: the chat train/val sets as Alpaca and ShareGPT JSON with ``dataset_info.json``
  (the format of LLaMA-Factory's ``data/README.md``; extra keys carry the provenance).

Output is deterministic: records sorted by pair id, keys in a fixed order, UTF-8 unescaped.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field

from kg.prompting import ContextClause, build_system_prompt
from training.datagen.augment import strip_punctuation
from training.datagen.context import build_contexts, excerpt
from training.datagen.types import GraphSnapshot, QAPair

log = structlog.get_logger(__name__)

CHAT_SPLITS = ("train", "val", "test_unseen", "test_paraphrase")
CHAT_FILES = (*CHAT_SPLITS, "test_refusal")
LF_SPLITS = ("train", "val")
ALPACA_COLUMNS = {
    "prompt": "instruction",
    "query": "input",
    "response": "output",
    "system": "system",
    "history": "history",
}
SHAREGPT_COLUMNS = {"messages": "conversations", "system": "system"}
SHAREGPT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}
#: The dataset names registered in ``dataset_info.json`` (``--dataset kgqa_alpaca_train`` ...).
DATASET_PREFIX = "kgqa"


class ExportConfig(BaseModel):
    """What the exported prompts show and how the GRPO prompt set is composed."""

    model_config = ConfigDict(extra="forbid")

    max_context_chars: int | None = Field(
        None,
        ge=50,
        description=(
            "Cut the clauses shown in a prompt to about this many characters together (an equal share "
            "each), keeping every sentence the reference answer quotes (training/datagen/context.py:"
            "excerpt). None: whole clauses."
        ),
    )
    grpo_unanswerable_share: float = Field(
        0.2,
        ge=0,
        lt=1,
        description=(
            "Most share of unanswerable prompts in grpo/prompts.jsonl; the unanswerable train pairs "
            "chosen for GRPO leave chat/train.jsonl."
        ),
    )
    seed: int = Field(13, description="Seeds which unanswerable pairs go to GRPO.")


def record_contexts(
    pair: QAPair, snapshot: GraphSnapshot, max_context_chars: int | None = None
) -> tuple[list[ContextClause], list[dict[str, Any]]]:
    """The prompt's clauses (for the system prompt) and their ``contexts`` records, in prompt order.

    With ``pair.extra["strip_context_punct"]`` the shown clause text loses its punctuation (the
    punctuation augmentation of the context); the record shows the same text as the prompt. With
    ``max_context_chars`` each clause is cut to its share around what the answer quotes (:func:`excerpt`).
    """
    shown = build_contexts(pair, snapshot)
    if max_context_chars and shown:
        share = max(50, max_context_chars // len(shown))
        shown = [
            ContextClause(
                c.clause_id, c.doc_title, c.number, excerpt(c.text, pair.answer, share), c.section_path
            )
            for c in shown
        ]
    if pair.extra.get("strip_context_punct"):
        rng = random.Random(pair.pair_id)
        shown = [
            ContextClause(
                c.clause_id, c.doc_title, c.number, strip_punctuation(c.text, rng, 1.0), c.section_path
            )
            for c in shown
        ]
    records: list[dict[str, Any]] = []
    for c in shown:
        clause = snapshot.clauses[c.clause_id]
        records.append(
            {
                "clause_id": c.clause_id,
                "version": clause.version,
                "doc_id": clause.doc_id,
                "doc_title": clause.doc_title,
                "number": clause.number,
                "text": c.text,
                "section_path": list(c.section_path),
                "triples": [
                    {
                        "subject": t.subject,
                        "predicate": t.predicate,
                        "object": t.object,
                        "qualifiers": dict(t.qualifiers),
                    }
                    for t in clause.triples
                ],
            }
        )
    return shown, records


def provenance(pair: QAPair, graph_version: int) -> dict[str, Any]:
    """The fields every record carries, whatever its format."""
    return {
        "id": pair.pair_id,
        "question": pair.question,
        "reference": pair.answer,
        "qtype": pair.qtype,
        "difficulty": pair.difficulty,
        "style": pair.style,
        "answerable": pair.answerable,
        "cot": pair.cot,
        "gold_clause_ids": list(pair.gold),
        "clause_versions": dict(pair.gold),
        "graph_version": graph_version,
        "template_id": pair.template_id,
        "generator": pair.generator,
        "augmentation": pair.augmentation,
        "split": pair.split,
    }


def chat_record(
    pair: QAPair, snapshot: GraphSnapshot, graph_version: int, max_context_chars: int | None = None
) -> dict[str, Any]:
    """One TRL conversational record: system (rules + clauses), user question, reference answer."""
    shown, contexts = record_contexts(pair, snapshot, max_context_chars)
    messages = [
        {"role": "system", "content": build_system_prompt(shown)},
        {"role": "user", "content": pair.question.strip()},
        {"role": "assistant", "content": pair.answer},
    ]
    return {"messages": messages, **provenance(pair, graph_version), "contexts": contexts}


def grpo_record(
    pair: QAPair, snapshot: GraphSnapshot, graph_version: int, max_context_chars: int | None = None
) -> dict[str, Any]:
    """One GRPO prompt: the system and user turns only; the reference and contexts for the reward."""
    shown, contexts = record_contexts(pair, snapshot, max_context_chars)
    prompt = [
        {"role": "system", "content": build_system_prompt(shown)},
        {"role": "user", "content": pair.question.strip()},
    ]
    return {"prompt": prompt, **provenance(pair, graph_version), "contexts": contexts}


def _lf_provenance(record: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "qtype", "difficulty", "style", "answerable", "cot", "gold_clause_ids", "clause_versions")
    rest = ("graph_version", "template_id", "generator", "augmentation", "split")
    return {k: record[k] for k in (*keep, *rest)}


def alpaca_record(record: dict[str, Any]) -> dict[str, Any]:
    """A chat record as Alpaca: instruction = question, system = the clause prompt, no history."""
    system, user, assistant = (m["content"] for m in record["messages"])
    return {
        "instruction": user,
        "input": "",
        "output": assistant,
        "system": system,
        "history": [],
        **_lf_provenance(record),
    }


def sharegpt_record(record: dict[str, Any]) -> dict[str, Any]:
    """A chat record as ShareGPT: human/gpt turns under ``conversations``, the system prompt apart."""
    system, user, assistant = (m["content"] for m in record["messages"])
    conversations = [{"from": "human", "value": user}, {"from": "gpt", "value": assistant}]
    return {"conversations": conversations, "system": system, **_lf_provenance(record)}


def _write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def _write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8", newline="\n")
    return path


def dataset_info() -> dict[str, Any]:
    """LLaMA-Factory's ``dataset_info.json`` for the four exported files (paths relative to it)."""
    info: dict[str, Any] = {}
    for split in LF_SPLITS:
        info[f"{DATASET_PREFIX}_alpaca_{split}"] = {
            "file_name": f"alpaca_{split}.json",
            "formatting": "alpaca",
            "columns": dict(ALPACA_COLUMNS),
        }
        info[f"{DATASET_PREFIX}_sharegpt_{split}"] = {
            "file_name": f"sharegpt_{split}.json",
            "formatting": "sharegpt",
            "columns": dict(SHAREGPT_COLUMNS),
            "tags": dict(SHAREGPT_TAGS),
        }
    return info


def chat_members(
    pairs: Sequence[QAPair], split: str, exclude: set[str] | frozenset[str] = frozenset()
) -> list[QAPair]:
    """The pairs a chat file holds: SFT band for train/val (less ``exclude``: GRPO's), every kept
    answerable pair for the tests, and the kept unanswerable test pairs for ``test_refusal``."""
    if split == "test_refusal":
        chosen = (p for p in pairs if p.split in ("test_unseen", "test_paraphrase") and p.band in ("sft", "grpo")
                  and not p.answerable)  # fmt: skip
    elif split in LF_SPLITS:
        chosen = (p for p in pairs if p.split == split and p.band == "sft" and p.pair_id not in exclude)
    else:
        chosen = (p for p in pairs if p.split == split and p.band in ("sft", "grpo") and p.answerable)
    return sorted(chosen, key=lambda p: p.pair_id)


def _seeded_order(pairs: Sequence[QAPair], seed: int) -> list[QAPair]:
    return sorted(pairs, key=lambda p: hashlib.sha256(f"{seed}\x00{p.pair_id}".encode()).hexdigest())


def grpo_members(
    pairs: Sequence[QAPair], split: str = "train", unanswerable_share: float = 0.2, seed: int = 13
) -> list[QAPair]:
    """GRPO-band pairs of ``split`` plus kept unanswerable ones, at most ``unanswerable_share`` of the set.

    Which unanswerable pairs are taken is decided by a seeded hash of the pair id, so the same
    dataset gives the same prompt set.
    """
    answerable = [p for p in pairs if p.split == split and p.band == "grpo" and p.answerable]
    refusals = [p for p in pairs if p.split == split and p.band in ("sft", "grpo") and not p.answerable]
    room = (
        int(unanswerable_share * len(answerable) / (1 - unanswerable_share)) if answerable else len(refusals)
    )
    return sorted([*answerable, *_seeded_order(refusals, seed)[:room]], key=lambda p: p.pair_id)


def export_dataset(
    pairs: Sequence[QAPair],
    snapshot: GraphSnapshot,
    out_dir: Path | str,
    *,
    graph_version: int,
    config: ExportConfig | None = None,
) -> dict[str, Path]:
    """Write the chat, GRPO and LLaMA-Factory files of the scored, split pairs.

    Args:
        pairs: pairs with ``band`` and ``split`` set (dropped pairs are not exported).
        snapshot: the graph snapshot the pairs were built from (clause texts and triples).
        out_dir: the dataset folder.
        graph_version: stamped on every record.
        config: prompt trimming and the GRPO set's composition (default :class:`ExportConfig`).

    Returns:
        File key (``chat/train``, ``grpo/prompts``, ``llamafactory/alpaca_train``, ...) -> path.
    """
    cfg = config or ExportConfig()
    out = Path(out_dir)
    files: dict[str, Path] = {}
    grpo_pairs = grpo_members(pairs, "train", cfg.grpo_unanswerable_share, cfg.seed)
    to_grpo = {p.pair_id for p in grpo_pairs}
    chat: dict[str, list[dict[str, Any]]] = {}
    for split in CHAT_FILES:
        members = chat_members(pairs, split, exclude=to_grpo)
        chat[split] = [chat_record(p, snapshot, graph_version, cfg.max_context_chars) for p in members]
        files[f"chat/{split}"] = _write_jsonl(out / "chat" / f"{split}.jsonl", chat[split])
    grpo = [grpo_record(p, snapshot, graph_version, cfg.max_context_chars) for p in grpo_pairs]
    files["grpo/prompts"] = _write_jsonl(out / "grpo" / "prompts.jsonl", grpo)
    grpo_eval = [
        grpo_record(p, snapshot, graph_version, cfg.max_context_chars)
        for p in grpo_members(pairs, "val", cfg.grpo_unanswerable_share, cfg.seed)
    ]
    files["grpo/eval"] = _write_jsonl(out / "grpo" / "eval.jsonl", grpo_eval)
    lf = out / "llamafactory"
    for split in LF_SPLITS:
        files[f"llamafactory/alpaca_{split}"] = _write_json(
            lf / f"alpaca_{split}.json", [alpaca_record(r) for r in chat[split]]
        )
        files[f"llamafactory/sharegpt_{split}"] = _write_json(
            lf / f"sharegpt_{split}.json", [sharegpt_record(r) for r in chat[split]]
        )
    files["llamafactory/dataset_info"] = _write_json(lf / "dataset_info.json", dataset_info())
    log.info(
        "export.done", out=str(out), **{k.replace("/", "_"): len(v) for k, v in chat.items()}, grpo=len(grpo),
        grpo_eval=len(grpo_eval), grpo_unanswerable=sum(not p.answerable for p in grpo_pairs),
    )  # fmt: skip
    return files


def dataset_hash(directory: Path | str, *, exclude: Sequence[str] = ("manifest.json",)) -> str:
    """SHA-256 over every file under ``directory`` (relative path and bytes, in path order).

    ``manifest.json`` is left out by default: it records this hash.
    """
    root = Path(directory)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel in exclude:
            continue
        digest.update(rel.encode("utf-8") + b"\x00")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


__all__ = [
    "ALPACA_COLUMNS",
    "CHAT_FILES",
    "CHAT_SPLITS",
    "ExportConfig",
    "SHAREGPT_COLUMNS",
    "SHAREGPT_TAGS",
    "alpaca_record",
    "chat_members",
    "chat_record",
    "dataset_hash",
    "dataset_info",
    "export_dataset",
    "grpo_members",
    "grpo_record",
    "provenance",
    "sharegpt_record",
]
