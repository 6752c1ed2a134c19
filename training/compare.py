"""The before/after report: the same questions answered by several models, side by side.

Reads the folders ``kgqa eval`` wrote (``metrics.json`` + ``predictions.jsonl``), one per model
(base, SFT adapter, GRPO adapter, ...), in the order given, and writes ``compare.md`` and a
self-contained ``compare.html`` (plots embedded as base64 PNG, no external assets) plus the PNGs.
"What changed" is computed, not written by hand: each model against the one before it, metric by
metric, with the direction that counts as better, so the report cannot flatter a regression. For
the metrics that are means over records, a paired bootstrap over the questions both models
answered decides: a difference whose 95% interval contains 0 is reported as no difference
(:mod:`training.metrics.bootstrap`); every value is shown with its own interval and test-set size.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kgqa.errors import ConfigError  # noqa: E402
from training.evaluate import PREDICTIONS  # noqa: E402
from training.metrics.bootstrap import INTERVAL_METRICS, paired_difference  # noqa: E402
from training.run_artifacts import read_jsonl  # noqa: E402

#: (key in aggregates, label, higher is better)
METRICS: tuple[tuple[str, str, bool], ...] = (
    ("key_fact_accuracy", "key-fact accuracy", True),
    ("token_f1", "token F1", True),
    ("bleu", "BLEU", True),
    ("rouge_l", "ROUGE-L", True),
    ("semantic_similarity", "semantic similarity", True),
    ("perplexity", "reference perplexity", False),
    ("citation_precision", "citation precision", True),
    ("citation_recall", "citation recall", True),
    ("hallucination_rate", "hallucination rate", False),
    ("verified_rate", "verified rate", True),
    ("correct_refusal_rate", "correct refusals", True),
    ("false_refusal_rate", "false refusals", False),
    ("latency_p50_s", "latency p50 (s)", False),
    ("tokens_per_second", "tokens/s", True),
)
PLOTTED = (
    "key_fact_accuracy",
    "token_f1",
    "rouge_l",
    "citation_recall",
    "hallucination_rate",
    "verified_rate",
)


@dataclass
class EvalRun:
    """One model's evaluation folder."""

    name: str
    path: Path
    metrics: dict[str, Any]
    predictions: list[dict[str, Any]]

    @property
    def model_id(self) -> str:
        return str(self.metrics.get("model", {}).get("model_id", self.name))

    def aggregates(self, test_set: str) -> dict[str, Any]:
        return self.metrics.get("test_sets", {}).get(test_set, {}).get("aggregates", {})

    def interval(self, test_set: str, key: str) -> dict[str, Any] | None:
        return self.metrics.get("test_sets", {}).get(test_set, {}).get("intervals", {}).get(key)

    def rows(self, test_set: str) -> list[dict[str, Any]]:
        return [p for p in self.predictions if p.get("test_set") == test_set]

    def composite(self, test_set: str) -> float | None:
        return self.metrics.get("test_sets", {}).get(test_set, {}).get("composite", {}).get("score")


def load_run(path: Path, name: str | None = None) -> EvalRun:
    """An eval folder, or a training run folder holding one under ``eval/``."""
    path = Path(path)
    folder = path if (path / "metrics.json").is_file() else path / "eval"
    metrics_file = folder / "metrics.json"
    if not metrics_file.is_file():
        raise ConfigError(f"{path}: no metrics.json here or in eval/; run kgqa eval --out {path} first")
    try:
        metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{metrics_file}: not valid JSON: {exc}") from exc
    predictions = read_jsonl(folder / PREDICTIONS)
    label = name or str(metrics.get("model", {}).get("model_id") or path.name)
    return EvalRun(label, path, metrics, predictions)


def changes(runs: Sequence[EvalRun], test_set: str) -> list[dict[str, Any]]:
    """Every metric of each run against the run before it: delta and whether that is better.

    Metrics with per-record values get a paired bootstrap interval of the difference; one that
    contains 0 makes the verdict ``no difference``, whatever the sign of the delta.
    """
    out = []
    for prev, cur in zip(runs, runs[1:], strict=False):
        for key, label, higher in METRICS:
            a, b = prev.aggregates(test_set).get(key), cur.aggregates(test_set).get(key)
            if a is None or b is None:
                continue
            delta = float(b) - float(a)
            paired = (
                paired_difference(prev.rows(test_set), cur.rows(test_set), key)
                if key in INTERVAL_METRICS
                else None
            )
            if abs(delta) < 1e-9:
                verdict = "same"
            elif paired is not None and not paired["significant"]:
                verdict = "no difference"
            else:
                verdict = "better" if (delta > 0) == higher else "worse"
            out.append(
                {"from": prev.name, "to": cur.name, "metric": key, "label": label,
                 "before": a, "after": b, "delta": delta, "verdict": verdict, "paired": paired}
            )  # fmt: skip
    return out


def _with_interval(run: EvalRun, test_set: str, key: str) -> str:
    value = run.aggregates(test_set).get(key)
    ci = run.interval(test_set, key)
    return (
        f"{_fmt(value)} [{ci['low']:.2f}, {ci['high']:.2f}] n={ci['n']}"
        if ci and value is not None
        else _fmt(value)
    )


def _change_text(c: dict[str, Any]) -> str:
    p = c.get("paired")
    ci = f"; paired 95% CI [{p['low']:+.3f}, {p['high']:+.3f}] over {p['n']}" if p else ""
    return (f"{c['to']} vs {c['from']}: {c['label']} {_fmt(c['before'])} → {_fmt(c['after'])} "
            f"({c['delta']:+.3f}{ci}, {c['verdict']})")  # fmt: skip


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _plot(runs: Sequence[EvalRun], test_set: str) -> bytes:
    keys = [k for k in PLOTTED if any(r.aggregates(test_set).get(k) is not None for r in runs)]
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(keys)), 3.6))
    width = 0.8 / max(1, len(runs))
    for i, run in enumerate(runs):
        values = [float(run.aggregates(test_set).get(k) or 0.0) for k in keys]
        ax.bar([x + i * width for x in range(len(keys))], values, width, label=run.name)
    ax.set_xticks([x + width * (len(runs) - 1) / 2 for x in range(len(keys))])
    ax.set_xticklabels(keys, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{test_set}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _side_by_side(runs: Sequence[EvalRun], test_set: str, limit: int) -> list[dict[str, Any]]:
    """Questions every run answered, in the first run's order, with each run's answer."""
    by_run = [{p.get("id"): p for p in r.predictions if p.get("test_set") == test_set} for r in runs]
    ids = [i for i in by_run[0] if all(i in m for m in by_run[1:])] if by_run else []
    rows = []
    for qid in ids[:limit]:
        first = by_run[0][qid]
        rows.append(
            {
                "id": qid,
                "question": first.get("question", ""),
                "reference": first.get("reference", ""),
                "answers": [
                    {
                        "model": run.name,
                        "prediction": m[qid].get("prediction", ""),
                        "citations": m[qid].get("citations", []),
                        "verified": m[qid].get("verified"),
                        "refusal": m[qid].get("refusal"),
                        "unsupported": [a.get("kind") for a in m[qid].get("unsupported", [])],
                    }
                    for run, m in zip(runs, by_run, strict=True)
                ],
            }
        )
    return rows


def compare(
    runs: Sequence[EvalRun], out_dir: Path, *, examples: int = 25, figures: Sequence[Path] = ()
) -> dict[str, Any]:
    """Write compare.md, compare.html, compare.json and one PNG per test set; return the summary.

    ``figures`` (training curves: SFT ``loss.png``, GRPO ``rewards.png`` with each reward
    component) are copied beside the report and embedded in the HTML after the tables.
    """
    if not runs:
        raise ConfigError("report compare needs at least one evaluation folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    for fig in figures:
        if not Path(fig).is_file():
            raise ConfigError(f"{fig}: figure not found")
    test_sets = list(dict.fromkeys(t for r in runs for t in r.metrics.get("test_sets", {})))
    summary: dict[str, Any] = {"models": [r.name for r in runs], "test_sets": {}}
    md = ["# Model comparison", "", "Models, in order: " + ", ".join(f"`{r.name}` ({r.model_id})" for r in runs), "",
          "Values: metric [95% bootstrap interval] n=records it counts. A change whose paired interval "
          "contains 0 is reported as no difference.", ""]  # fmt: skip
    body = [
        f"<h1>Model comparison</h1><p>Models, in order: {html.escape(', '.join(r.name for r in runs))}</p>"
        "<p>Values: metric [95% bootstrap interval] n=records it counts. A change whose paired interval "
        "contains 0 is reported as no difference.</p>"
    ]
    for test_set in test_sets:
        png = _plot(runs, test_set)
        png_name = f"compare_{test_set}.png"
        (out_dir / png_name).write_bytes(png)
        table = [["metric", *[r.name for r in runs]]]
        for key, label, higher in METRICS:
            values = [r.aggregates(test_set).get(key) for r in runs]
            if all(v is None for v in values):
                continue
            table.append(
                [f"{label} ({'↑' if higher else '↓'})", *[_with_interval(r, test_set, key) for r in runs]]
            )
        table.append(["composite (AHP)", *[_fmt(r.composite(test_set)) for r in runs]])
        table.append(["records", *[_fmt(r.aggregates(test_set).get("n")) for r in runs]])
        delta = changes(runs, test_set)
        rows = _side_by_side(runs, test_set, examples)
        summary["test_sets"][test_set] = {"table": table, "changes": delta, "plot": png_name}

        md += [f"## {test_set}", "", "| " + " | ".join(table[0]) + " |", "|---|" + "---:|" * len(runs)]
        md += ["| " + " | ".join(row) + " |" for row in table[1:]]
        md += ["", f"![{test_set}]({png_name})", "", "### What changed", ""]
        md += [f"- {_change_text(c)}" for c in delta if c["verdict"] != "same"] or ["- no metric changed"]
        md += ["", f"### Answers side by side ({len(rows)} questions)", ""]
        for row in rows:
            md += [f"**{row['id']}** {row['question']}", "", f"- reference: {row['reference']}"]
            for a in row["answers"]:
                status = "refusal" if a["refusal"] else ("VERIFIED" if a["verified"] else "not verified")
                md.append(
                    f"- {a['model']} [{status}; cites {', '.join(a['citations']) or '-'}]: {a['prediction']}"
                )
            md.append("")

        b64 = base64.b64encode(png).decode()
        body.append(f"<h2>{html.escape(test_set)}</h2><table><tr>")
        body.append("".join(f"<th>{html.escape(h)}</th>" for h in table[0]) + "</tr>")
        for tr in table[1:]:
            body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in tr) + "</tr>")
        body.append(f'</table><img alt="{html.escape(test_set)}" src="data:image/png;base64,{b64}">')
        body.append("<h3>What changed</h3><ul>")
        body += [
            f"<li class='{c['verdict'].replace(' ', '-')}'>{html.escape(_change_text(c))}</li>"
            for c in delta
            if c["verdict"] != "same"
        ]
        body.append("</ul><h3>Answers side by side</h3><table><tr><th>question / reference</th>")
        body.append("".join(f"<th>{html.escape(r.name)}</th>" for r in runs) + "</tr>")
        for row in rows:
            cells = [
                f"<td><b>{html.escape(str(row['id']))}</b> {html.escape(row['question'])}"
                f"<br><i>{html.escape(row['reference'])}</i></td>"
            ]
            for a in row["answers"]:
                status = "refusal" if a["refusal"] else ("VERIFIED" if a["verified"] else "not verified")
                cells.append(
                    f"<td><span class='{status.replace(' ', '-')}'>{status}</span> "
                    f"{html.escape(a['prediction'])}<br><small>cites: {html.escape(', '.join(a['citations']) or '-')}"
                    f"</small></td>"
                )
            body.append("<tr>" + "".join(cells) + "</tr>")
        body.append("</table>")
    if figures:
        md += ["## Training curves", ""]
        body.append("<h2>Training curves</h2>")
    for i, fig in enumerate(figures, start=1):
        data = Path(fig).read_bytes()
        name = f"figure{i}_{Path(fig).parent.name}_{Path(fig).name}"
        (out_dir / name).write_bytes(data)
        md += [f"![{Path(fig).parent.name}/{Path(fig).name}]({name})", ""]
        body.append(
            f"<h3>{html.escape(Path(fig).parent.name + '/' + Path(fig).name)}</h3>"
            f'<img alt="{html.escape(name)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        )
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;font-size:13px}"
        ".better{color:#070}.worse{color:#a00}.no-difference{color:#666}.VERIFIED{color:#070;font-weight:bold}.not-verified{color:#a00}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>kgqa model comparison</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
    (out_dir / "compare.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    (out_dir / "compare.html").write_text(page, encoding="utf-8")
    (out_dir / "compare.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


__all__ = ["METRICS", "EvalRun", "changes", "compare", "load_run"]
