"""Files every training run leaves behind: loss curves (CSV + PNG), JSON records, provenance helpers.

Shared by pretraining, SFT and (later) GRPO so that every run folder reads the same way: a
``loss.csv`` with one row per logged step, a ``loss.png`` drawn from it, ``metrics.json`` and
``provenance.json``. The CSV is the source of truth; the PNG is only a picture of it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import resource
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgqa.errors import ConfigError

LOSS_COLUMNS = ("step", "train_loss", "eval_loss", "lr")

# trainer log keys -> loss.csv columns (transformers' Trainer names them this way)
_LOG_KEYS = {"loss": "train_loss", "eval_loss": "eval_loss", "learning_rate": "lr"}


@dataclass
class LossRow:
    """One logged step; a column is ``None`` when that step did not log it (eval runs less often)."""

    step: int
    values: dict[str, float | None] = field(default_factory=dict)


def rows_from_log_history(
    log_history: Iterable[Mapping[str, Any]], keys: Mapping[str, str] = _LOG_KEYS
) -> list[LossRow]:
    """Merge a Trainer's ``state.log_history`` into one row per step.

    Train and eval logs of the same step arrive as separate dicts; summary entries (``train_runtime``
    and the like, without any of ``keys``) are skipped.
    """
    by_step: dict[int, LossRow] = {}
    for entry in log_history:
        found = {col: float(entry[key]) for key, col in keys.items() if key in entry}
        if not found or "step" not in entry:
            continue
        step = int(entry["step"])
        row = by_step.setdefault(step, LossRow(step))
        row.values.update(found)
    return [by_step[s] for s in sorted(by_step)]


def write_loss_csv(rows: Sequence[LossRow], path: Path, columns: Sequence[str] = LOSS_COLUMNS) -> Path:
    """Write ``rows`` as CSV with ``columns`` (the first must be ``step``); missing values are empty."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            cells: list[object] = [row.step]
            for col in columns[1:]:
                value = row.values.get(col)
                cells.append("" if value is None else f"{value:.6g}")
            writer.writerow(cells)
    return path


def read_loss_csv(path: Path) -> list[LossRow]:
    """Read a CSV written by :func:`write_loss_csv` back into rows."""
    rows = []
    with path.open(encoding="utf-8", newline="") as fh:
        for rec in csv.DictReader(fh):
            step = int(rec.pop("step"))
            rows.append(LossRow(step, {k: float(v) if v else None for k, v in rec.items()}))
    return rows


def plot_loss_png(rows: Sequence[LossRow], path: Path, title: str = "loss") -> Path:
    """Draw every ``*_loss`` column against the step (Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss_cols = sorted({c for r in rows for c in r.values if c.endswith("loss")})
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for col in loss_cols:
        points = [(r.step, r.values[col]) for r in rows if r.values.get(col) is not None]
        points = [(s, v) for s, v in points if v is not None and math.isfinite(v)]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o" if len(points) < 30 else None, markersize=3, label=col)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if loss_cols:
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_loss_curves(rows: Sequence[LossRow], run_dir: Path, title: str = "loss") -> tuple[Path, Path]:
    """``loss.csv`` and ``loss.png`` in ``run_dir``."""
    return write_loss_csv(rows, run_dir / "loss.csv"), plot_loss_png(rows, run_dir / "loss.png", title)


def write_json(path: Path, payload: object) -> Path:
    """Pretty UTF-8 JSON (Chinese stays readable), newline-terminated."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def read_json(path: Path) -> Any:
    """Read JSON, raising :class:`ConfigError` that names the file when it is missing or malformed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON ({exc})") from exc


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of a JSONL file, read lazily.

    The one JSONL reader of training (datasets, prompts, probes, predictions): a line that is not
    JSON raises :class:`ConfigError` naming the file and line; what a value must hold is the
    caller's to check, with the same ``path:line`` in its message.

    Raises:
        ConfigError: the file cannot be read, or a line is not JSON.
    """
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc


def read_jsonl(path: Path) -> list[Any]:
    """The values of a JSONL file (:func:`iter_jsonl`); an absent file has none."""
    return [value for _, value in iter_jsonl(path)] if path.is_file() else []


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_texts(named_texts: Iterable[tuple[str, str]]) -> str:
    """One hash over (name, text) pairs in the given order: a corpus fingerprint."""
    h = hashlib.sha256()
    for name, text in named_texts:
        h.update(name.encode("utf-8") + b"\0" + text.encode("utf-8") + b"\0")
    return h.hexdigest()


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def library_versions() -> dict[str, str]:
    """Versions of the libraries a run's numbers depend on (absent ones are left out)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0]}
    for name in ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "tokenizers"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


__all__ = [
    "LOSS_COLUMNS",
    "LossRow",
    "iter_jsonl",
    "library_versions",
    "peak_rss_mb",
    "plot_loss_png",
    "read_json",
    "read_jsonl",
    "read_loss_csv",
    "rows_from_log_history",
    "sha256_file",
    "sha256_texts",
    "write_json",
    "write_loss_csv",
    "write_loss_curves",
]
