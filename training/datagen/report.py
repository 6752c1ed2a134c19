"""The dataset report: what was generated, what was dropped and why, and what knowledge is covered.

Coverage is the number that says whether fine-tuning can inject the manuals: the share of active
clauses with at least one kept (SFT or GRPO) pair, and the share of their triples whose fact a kept
answer states. Both are counted from the pairs as written, never estimated, and per document, so
a manual the generator handles badly shows up as such.

Writes ``report/report.json``, ``report/report.md`` and length histograms (PNG) per band.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from kg.citations import strip_markers
from kg.normalize import normalize_text
from training.datagen.types import GraphSnapshot, QAPair, Rejection, SourceTriple

log = structlog.get_logger(__name__)

BANDS = ("sft", "grpo", "drop")
KEPT = frozenset(("sft", "grpo"))
NO_DOCUMENT = "(none)"


def _compact(text: str) -> str:
    return "".join(normalize_text(text).split())


def triple_named(extra_triple: Any, triple: SourceTriple) -> bool:
    """Whether a pair's ``extra["triple"]`` names ``triple`` (a dict, an (s, p, o) list or a string)."""
    if isinstance(extra_triple, dict):
        keys = ("subject", "predicate", "object")
        return all(str(extra_triple.get(k, "")) == getattr(triple, k) for k in keys)
    if isinstance(extra_triple, list | tuple) and len(extra_triple) >= 3:
        return tuple(map(str, extra_triple[:3])) == (triple.subject, triple.predicate, triple.object)
    if isinstance(extra_triple, str):
        return extra_triple in (triple.object, f"{triple.subject}|{triple.predicate}|{triple.object}")
    return False


def _documents(pair: QAPair, snapshot: GraphSnapshot) -> list[str]:
    docs = {snapshot.clauses[c].doc_id if c in snapshot.clauses else c.split("/", 1)[0] for c in pair.gold}
    return sorted(docs) or [NO_DOCUMENT]


def coverage(pairs: Sequence[QAPair], snapshot: GraphSnapshot) -> dict[str, Any]:
    """Clause and triple coverage by the kept pairs, overall and per document.

    A clause is covered when a kept pair has it as gold. A triple is covered when a kept pair with
    its clause as gold states the triple's object (compared after number normalization, without
    spaces) or names the triple in ``extra["triple"]``.
    """
    by_gold: dict[str, list[QAPair]] = defaultdict(list)
    for p in pairs:
        if p.band in KEPT:
            for cid in p.gold:
                by_gold[cid].append(p)
    answers = {p.pair_id: _compact(strip_markers(p.answer)) for ps in by_gold.values() for p in ps}

    per_doc: dict[str, dict[str, Any]] = {}
    for cid, clause in sorted(snapshot.clauses.items()):
        doc = per_doc.setdefault(
            clause.doc_id,
            {"title": clause.doc_title, "clauses": 0, "clauses_covered": 0, "triples": 0, "triples_covered": 0},
        )
        kept = by_gold.get(cid, [])
        doc["clauses"] += 1
        doc["clauses_covered"] += bool(kept)
        for t in clause.triples:
            doc["triples"] += 1
            obj = _compact(t.object)
            doc["triples_covered"] += any(
                (obj and obj in answers[p.pair_id]) or triple_named(p.extra.get("triple"), t) for p in kept
            )
    for doc in per_doc.values():
        doc["clause_share"] = _share(doc["clauses_covered"], doc["clauses"])
        doc["triple_share"] = _share(doc["triples_covered"], doc["triples"])
    totals = {k: sum(d[k] for d in per_doc.values()) for k in ("clauses", "clauses_covered", "triples", "triples_covered")}
    return {
        "clauses": {
            "active": totals["clauses"],
            "covered": totals["clauses_covered"],
            "share": _share(totals["clauses_covered"], totals["clauses"]),
        },
        "triples": {
            "total": totals["triples"],
            "covered": totals["triples_covered"],
            "share": _share(totals["triples_covered"], totals["triples"]),
        },
        "by_document": per_doc,
    }


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _length_stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min": min(values),
        "median": statistics.median(values),
        "mean": round(statistics.fmean(values), 1),
        "max": max(values),
    }


def _lengths(pairs: Sequence[QAPair]) -> dict[str, dict[str, list[int]]]:
    out: dict[str, dict[str, list[int]]] = {"question": {}, "answer": {}}
    for band in BANDS:
        members = [p for p in pairs if p.band == band]
        out["question"][band] = [len(p.question.strip()) for p in members]
        out["answer"][band] = [len(strip_markers(p.answer).strip()) for p in members]
    return out


def _histogram(path: Path, title: str, by_band: dict[str, list[int]]) -> Path:
    """One PNG: overlaid length histograms per band (ASCII labels, so no CJK font is needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    values = [v for vs in by_band.values() for v in vs]
    bins = min(40, max(5, len(set(values)))) if values else 5
    upper = max(values) if values else 1
    for band in BANDS:
        if by_band.get(band):
            ax.hist(by_band[band], bins=bins, range=(0, upper + 1), alpha=0.55, label=f"{band} (n={len(by_band[band])})")
    ax.set_title(title)
    ax.set_xlabel("characters")
    ax.set_ylabel("pairs")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if values:
        ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})
    return path


def build_report(
    pairs: Sequence[QAPair],
    rejections: Sequence[Rejection],
    snapshot: GraphSnapshot,
    out_dir: Path | str,
    *,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Count, chart and write the report of a scored, split dataset.

    Args:
        pairs: every scored pair (all bands).
        rejections: candidates rejected before they became pairs (generation failures).
        snapshot: the graph snapshot (active clauses and triples, for coverage).
        out_dir: the dataset folder; files go to ``out_dir/report/``.
        extra: run facts to include verbatim (seed, timings, pairs per second, LLM usage, ...).

    Returns:
        The report as written to ``report.json``.
    """
    report_dir = Path(out_dir) / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    kept = [p for p in pairs if p.band in KEPT]

    def count(values: list[str]) -> dict[str, int]:
        return dict(sorted(Counter(values).items()))

    counts = {
        "band": count([p.band or "none" for p in pairs]),
        "qtype": count([p.qtype for p in kept]),
        "difficulty": count([p.difficulty for p in kept]),
        "style": count([p.style for p in kept]),
        "document": count([d for p in kept for d in _documents(p, snapshot)]),
        "split": count([p.split or "none" for p in kept]),
        "augmentation": count([p.augmentation for p in kept]),
        "generator": count([p.generator for p in kept]),
        "qtype_by_band": {b: count([p.qtype for p in pairs if p.band == b]) for b in BANDS},
    }
    dropped = [p for p in pairs if p.band == "drop"]
    generation = count([r.reason for r in rejections])
    quality = count([p.reject_reason or "unknown" for p in dropped])
    all_reasons = Counter(generation) + Counter(quality)
    rejected = {
        "total": len(rejections) + len(dropped),
        "generation": generation,
        "quality": quality,
        "by_reason": dict(sorted(all_reasons.items())),
        "by_category": count([r.split(":", 1)[0] for r, n in all_reasons.items() for _ in range(n)]),
        "by_qtype": count([r.qtype for r in rejections] + [p.qtype for p in dropped]),
    }
    originals = [p for p in pairs if p.augmentation == "none"]
    punct = [p for p in pairs if p.augmentation == "punct"]
    punctuation = {
        "originals": len(originals),
        "punct_variants": len(punct),
        "punct_per_original": _share(len(punct), len(originals)),
        "kept_punct_variants": sum(p.band in KEPT for p in punct),
        "kept_share": _share(sum(p.band in KEPT for p in punct), len(kept)),
    }
    lengths = _lengths(pairs)
    figures = {
        "question_lengths": _histogram(report_dir / "question_lengths.png", "Question length per band", lengths["question"]),
        "answer_lengths": _histogram(report_dir / "answer_lengths.png", "Answer length per band (no markers)", lengths["answer"]),
    }
    report: dict[str, Any] = {
        "graph_version": snapshot.graph_version,
        "pairs": {"total": len(pairs), "kept": len(kept), **{b: counts["band"].get(b, 0) for b in BANDS}},
        "counts": counts,
        "rejections": rejected,
        "coverage": coverage(pairs, snapshot),
        "punctuation": punctuation,
        "lengths": {kind: {b: _length_stats(v) for b, v in per.items()} for kind, per in lengths.items()},
        "figures": {k: p.name for k, p in figures.items()},
        "extra": dict(extra or {}),
    }
    (report_dir / "report.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8"
    )
    (report_dir / "report.md").write_text(render_markdown(report), encoding="utf-8")
    log.info(
        "report.written",
        out=str(report_dir),
        kept=len(kept),
        clause_coverage=report["coverage"]["clauses"]["share"],
        triple_coverage=report["coverage"]["triples"]["share"],
    )
    return report


def _table(title: str, counts: dict[str, Any], head: str = "value") -> list[str]:
    lines = [f"### {title}", "", f"| {head} | count |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in counts.items()] or ["| (none) | 0 |"]
    return [*lines, ""]


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown for people (the JSON is for programs)."""
    pairs, cov, punct = report["pairs"], report["coverage"], report["punctuation"]
    lines = [
        f"# Dataset report (graph version {report['graph_version']})",
        "",
        f"Pairs: {pairs['total']} scored, {pairs['kept']} kept "
        f"(SFT {pairs['sft']}, GRPO {pairs['grpo']}), {pairs['drop']} dropped; "
        f"{report['rejections']['total']} rejections in all (generation and quality).",
        "",
        "## Coverage",
        "",
        f"- Clauses with at least one kept pair: {cov['clauses']['covered']} / {cov['clauses']['active']} "
        f"({cov['clauses']['share']:.1%})",
        f"- Triples stated by a kept answer: {cov['triples']['covered']} / {cov['triples']['total']} "
        f"({cov['triples']['share']:.1%})",
        "",
        "| document | clauses | covered | share | triples | covered | share |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for doc_id, d in cov["by_document"].items():
        lines.append(
            f"| {d['title']} ({doc_id}) | {d['clauses']} | {d['clauses_covered']} | {d['clause_share']:.1%} | "
            f"{d['triples']} | {d['triples_covered']} | {d['triple_share']:.1%} |"
        )
    lines += [
        "",
        "## Punctuation augmentation",
        "",
        f"- Punctuation-stripped variants: {punct['punct_variants']} for {punct['originals']} original questions "
        f"({punct['punct_per_original']:.1%}); kept: {punct['kept_punct_variants']} "
        f"({punct['kept_share']:.1%} of kept pairs)",
        "",
        "## Counts (kept pairs)",
        "",
    ]
    for key in ("band", "qtype", "difficulty", "style", "document", "split", "augmentation", "generator"):
        lines += _table(key + (" (all pairs)" if key == "band" else ""), report["counts"][key], key)
    lines += ["## Rejections", ""]
    lines += _table("by reason", report["rejections"]["by_reason"], "reason")
    lines += _table("by question type", report["rejections"]["by_qtype"], "qtype")
    lines += ["## Lengths (characters)", ""]
    for kind, per in report["lengths"].items():
        lines += [f"### {kind}", "", "| band | n | min | median | mean | max |", "|---|---:|---:|---:|---:|---:|"]
        for band, s in per.items():
            lines.append(
                f"| {band} | {s['n']} | {s.get('min', '-')} | {s.get('median', '-')} | {s.get('mean', '-')} | {s.get('max', '-')} |"
            )
        lines.append("")
    lines += [f"![{k}]({v})" for k, v in report["figures"].items()]
    if report["extra"]:
        lines += ["", "## Run", "", "```json", json.dumps(report["extra"], ensure_ascii=False, indent=2, default=str), "```"]
    return "\n".join(lines) + "\n"


__all__ = ["build_report", "coverage", "render_markdown", "triple_named"]
