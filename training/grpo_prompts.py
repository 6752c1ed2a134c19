"""The GRPO prompt set: records read and checked as trainer rows, the unanswerable mix, probes.

The dataset export writes ``grpo/prompts.jsonl`` (and ``grpo/eval.jsonl``) as ``[system, user]``
prompts with the record fields the rewards read; a malformed record must fail before a model is
loaded, naming its file and line, not in the middle of a run. What the trainer draws from is
decided here too, since the share of unanswerable prompts decides whether the policy keeps refusing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from kgqa.errors import ConfigError
from training.run_artifacts import iter_jsonl

log = structlog.get_logger(__name__)

#: The reward columns the trainer needs besides ``prompt`` (contexts travel as JSON text: their
#: triples' qualifiers differ in shape from record to record, which Arrow columns do not allow).
RECORD_COLUMNS = ("id", "reference", "answerable", "cot", "gold_clause_ids", "contexts_json")


def load_prompts(path: Path) -> list[dict[str, Any]]:
    """The GRPO prompt set as trainer rows: ``prompt`` plus :data:`RECORD_COLUMNS`.

    Raises:
        ConfigError: naming the file and line when it is missing, malformed, or a record lacks
            a ``[system, user]`` prompt, its ``contexts`` or (for an answerable one) its reference.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: GRPO prompt set not found (expected DATASET_DIR/grpo/prompts.jsonl)")
    rows = [prompt_row(record, f"{path}:{lineno}") for lineno, record in iter_jsonl(path)]
    if not rows:
        raise ConfigError(f"{path}: no prompts")
    return rows


def balance_unanswerable(rows: Sequence[dict[str, Any]], share: float | None) -> list[dict[str, Any]]:
    """``rows`` with the unanswerable ones repeated until they are ``share`` of the rows, or nearly.

    GRPO learns only from differences inside a group. Refusal is rewarded only on unanswerable
    prompts and punished on every answerable prompt whose sample refuses, so a prompt set that is
    mostly answerable teaches the policy to stop refusing (measured: 3 of 24 prompts drawn were
    unanswerable, correct refusals .56 -> 0). Repeating the unanswerable prompts, not taking more
    of them out of the SFT split, keeps the two sets apart. Every unanswerable row stays once;
    the extra copies go one each to the first ones, so the share is as close as whole rows allow.
    Rows are never dropped: a share below the set's own leaves it as is (and says so), as does
    ``None`` or a set without one of the two kinds.
    """
    rows = list(rows)
    unanswerable = sum(not r["answerable"] for r in rows)
    answerable = len(rows) - unanswerable
    if share is None or not unanswerable or not answerable:
        return rows
    total = round(share * answerable / (1 - share))
    if total < unanswerable:
        log.warning(
            "grpo.unanswerable_share_not_reached", asked=share, in_set=round(unanswerable / len(rows), 3),
            reason="repeating rows can only raise the share",
        )  # fmt: skip
        return rows
    copies, extra = divmod(total, unanswerable)
    out: list[dict[str, Any]] = []
    seen = 0
    for row in rows:
        if row["answerable"]:
            out.append(row)
            continue
        out.extend([row] * (copies + (seen < extra)))
        seen += 1
    return out


def prompt_row(record: Mapping[str, Any], where: str = "record") -> dict[str, Any]:
    """One GRPO record as a trainer row (checked; see :func:`load_prompts`)."""
    if not isinstance(record, Mapping):
        raise ConfigError(f"{where}: a GRPO record must be a JSON object")
    prompt = record.get("prompt")
    if (
        not isinstance(prompt, list)
        or not prompt
        or any(not isinstance(m, dict) or m.get("role") not in ("system", "user") for m in prompt)
        or prompt[-1].get("role") != "user"
    ):
        raise ConfigError(f"{where}: 'prompt' must be the [system, user] messages (no assistant turn)")
    contexts = record.get("contexts")
    if not isinstance(contexts, list) or any(
        not isinstance(c, dict) or "clause_id" not in c for c in contexts
    ):
        raise ConfigError(f"{where}: 'contexts' must be the prompt's clauses (objects with clause_id)")
    answerable = bool(record.get("answerable", True))
    if answerable and not isinstance(record.get("reference"), str):
        raise ConfigError(f"{where}: an answerable record needs its 'reference' answer")
    return {
        "prompt": [{"role": m["role"], "content": str(m.get("content") or "")} for m in prompt],
        "id": str(record.get("id") or where),
        "reference": str(record.get("reference") or ""),
        "answerable": answerable,
        "cot": bool(record.get("cot", False)),
        "gold_clause_ids": [str(x) for x in record.get("gold_clause_ids") or []],
        "contexts_json": json.dumps(contexts, ensure_ascii=False),
    }


def load_probes(path: Path) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Probe completions: (records, completions, labels) from a JSONL of GRPO records plus
    ``completion`` and ``label``.

    Raises:
        ConfigError: naming the file and line of a bad probe.
    """
    records, completions, labels = [], [], []
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: probes file not found")
    for lineno, probe in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if (
            not isinstance(probe, dict)
            or not isinstance(probe.get("completion"), str)
            or not probe.get("label")
        ):
            raise ConfigError(f"{where}: a probe needs 'completion' (text) and 'label'")
        row = prompt_row(probe, where)
        records.append({k: row[k] for k in RECORD_COLUMNS})
        completions.append(probe["completion"])
        labels.append(str(probe["label"]))
    return records, completions, labels


__all__ = ["RECORD_COLUMNS", "balance_unanswerable", "load_probes", "load_prompts", "prompt_row"]
