"""Evaluation of a model (base, optionally with a LoRA adapter) on the dataset's test sets.

``EvalRunner(config, generator).run(test_sets, out_dir)`` answers every record's prompt (its
own system + user messages, so the model sees exactly the clauses the reference was written
from), scores each answer against the reference and the record's clauses, aggregates per test set
and per question type, weighs a composite score with AHP, and writes ``metrics.json``,
``predictions.jsonl`` and ``metrics.md`` into ``out_dir``.

Verification needs no graph: the record's ``contexts`` are the evidence (active clause versions
with their triples) and the allowed citation ids, as GRPO does. Definitions of the aggregates:

* ``hallucination_rate``: share of *answerable* records whose answer has >= 1 unsupported atom
  (a refusal has none, unless it carries a malformed marker); ``mean_unsupported_atoms`` over the
  same records; ``verified_rate``: share of answerable records the verifier passes.
* ``correct_refusal_rate``: share of *unanswerable* records answered with the refusal
  (:func:`kg.verifier.is_refusal`); ``false_refusal_rate``: share of answerable records refused.
* ``empty_answer_rate``: share of answerable records answered with no words at all. An empty
  answer claims nothing, so it is neither a hallucination nor a refusal; it is reported because it
  lifts the inverted criteria of the composite (an all-empty model scores about 0.32 there, its
  floor, while its key-fact, F1 and citation criteria are 0).
* ``citation_*``: means over answerable records (see :mod:`training.metrics.citations`).
* ``key_fact_accuracy``: mean recall over records whose reference has key facts
  (``key_facts_scored`` of them; ``key_facts_excluded`` had none).
* ``perplexity``: ``exp(total NLL / total reference tokens)`` over all records (token-weighted).
* ``bleu``: sacrebleu corpus BLEU; ``sentence_bleu``: mean sentence BLEU; other text scores: means.
* ``intervals`` (beside the aggregates of each test set): a bootstrap percentile interval for
  every aggregate that is a mean over records (:mod:`training.metrics.bootstrap`), with the
  number of records it rests on.
* latency: per answer, the wall time of its generate call; ``tokens_per_second`` = generated
  tokens / total generation wall time.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from tqdm import tqdm

from kg.verifier import EvidenceClause, VerificationResult, Verifier, is_refusal
from kgqa.errors import ConfigError
from training.eval_config import EvalConfig
from training.generation import Completion, Generator, ReferenceScore
from training.metrics.bootstrap import intervals
from training.metrics.citations import citation_score
from training.metrics.keyfacts import key_fact_score
from training.metrics.semantic import EncoderLoader, SemanticScorer
from training.metrics.text import corpus_bleu, rouge_l, sentence_bleu, token_f1, tokenize_zh
from training.rewards.evidence import context_clause, record_contexts
from training.run_artifacts import iter_jsonl, read_jsonl

log = structlog.get_logger(__name__)

PREDICTIONS = "predictions.jsonl"
"""The per-record rows :meth:`EvalRunner.run` writes beside ``metrics.json`` (one JSON object a line)."""

TEST_FILES = {
    "paraphrase": "test_paraphrase.jsonl",
    "unseen": "test_unseen.jsonl",
    "refusal": "test_refusal.jsonl",
}


# --- loading ----------------------------------------------------------------------------------


def read_records(path: Path) -> list[dict[str, Any]]:
    """Chat records of one JSONL file, each checked for a prompt and a reference answer.

    Raises:
        ConfigError: unreadable file, bad JSON, or a record without system/user messages or reference.
    """
    records = []
    for n, rec in iter_jsonl(path):
        if not isinstance(rec, dict) or not prompt_messages(rec):
            raise ConfigError(f"{path}:{n}: a chat record needs 'messages' with a user turn")
        if reference_answer(rec) is None:
            raise ConfigError(f"{path}:{n}: no reference answer ('reference' or an assistant turn)")
        records.append(rec)
    return records


def load_test_sets(paths: Sequence[Path]) -> dict[str, list[dict[str, Any]]]:
    """Test sets by name from dataset folders (both chat/test_*.jsonl) and/or JSONL files.

    A folder gives ``paraphrase``, ``unseen`` and ``refusal`` (from ``chat/`` or the folder itself;
    an absent or empty file is left out); a file is named by its stem without ``test_``. Names repeated across inputs get the parent's name.

    Raises:
        ConfigError: a path is missing, or a folder holds no test set.
    """
    found: list[tuple[str, Path]] = []
    for path in paths:
        if path.is_dir():
            chat = path / "chat" if (path / "chat").is_dir() else path
            files = [
                (name, chat / f)
                for name, f in TEST_FILES.items()
                if (chat / f).is_file() and (chat / f).read_text(encoding="utf-8").strip()
            ]
            if not files:
                raise ConfigError(
                    f"{path}: no test set here (expected chat/{' or chat/'.join(TEST_FILES.values())})"
                )
            found += files
        elif path.is_file():
            found.append((path.stem.removeprefix("test_"), path))
        else:
            raise ConfigError(f"{path}: no such test set file or dataset folder")
    names = [n for n, _ in found]
    sets: dict[str, list[dict[str, Any]]] = {}
    for name, file in found:
        folder = file.parent.parent if file.parent.name == "chat" else file.parent
        sets[name if names.count(name) == 1 else f"{folder.name}/{name}"] = read_records(file)
    return sets


def prompt_messages(record: Mapping[str, Any]) -> list[dict[str, str]]:
    """The record's messages up to (without) the reference assistant turn: what the model sees."""
    messages = list(record.get("prompt") or record.get("messages") or [])
    while messages and messages[-1].get("role") == "assistant":
        messages.pop()
    return messages if any(m.get("role") == "user" for m in messages) else []


def reference_answer(record: Mapping[str, Any]) -> str | None:
    """The reference answer: ``reference``, else the last assistant message."""
    if isinstance(record.get("reference"), str):
        return record["reference"]
    for m in reversed(record.get("messages") or []):
        if m.get("role") == "assistant":
            return m.get("content", "")
    return None


def evidence_of(record: Mapping[str, Any]) -> dict[str, EvidenceClause]:
    """The record's prompt clauses as active evidence (what an answer may cite and rely on).

    The same conversion the GRPO rewards use, so evaluation and training judge answers alike.
    """
    return {c["clause_id"]: context_clause(c) for c in record_contexts(record)}


def verify_record(verifier: Verifier, prediction: str, record: Mapping[str, Any]) -> VerificationResult:
    """Verify an answer against the record's own clauses; citing anything else is flagged."""
    evidence = evidence_of(record)
    return verifier.verify_against(prediction, evidence, allowed_ids=list(evidence))


# --- aggregation ------------------------------------------------------------------------------


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _rate(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def aggregate(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The aggregates of per-record results (see the module doc for each definition)."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    m = [r["metrics"] for r in rows]
    am = [r["metrics"] for r in answerable]
    kf = [x.get("key_fact_recall") for x in m]
    nll = [(x["reference_nll"], x["reference_tokens"]) for x in m if x.get("reference_nll") is not None]
    tokens = sum(n for _, n in nll)
    latencies = [r["latency_s"] for r in rows]
    gen_time = sum(r.get("_call_share_s", r["latency_s"]) for r in rows)
    verified = bool(answerable) and "unsupported_count" in answerable[0]  # verification was on
    out: dict[str, Any] = {
        "n": len(rows),
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        "key_fact_accuracy": _mean(kf),
        "key_facts_scored": sum(v is not None for v in kf),
        "key_facts_excluded": sum(v is None for v in kf),
        "token_f1": _mean([x.get("token_f1") for x in m]),
        "bleu": corpus_bleu([r["prediction"] for r in rows], [r["reference"] for r in rows])
        if rows and "sentence_bleu" in m[0]
        else None,
        "sentence_bleu": _mean([x.get("sentence_bleu") for x in m]),
        "rouge_l": _mean([x.get("rouge_l") for x in m]),
        "semantic_similarity": _mean([x.get("semantic_similarity") for x in m]),
        "perplexity": math.exp(sum(v for v, _ in nll) / tokens) if tokens else None,
        "citation_precision": _mean([x.get("citation_precision") for x in am]),
        "citation_recall": _mean([x.get("citation_recall") for x in am]),
        "citation_f1": _mean([x.get("citation_f1") for x in am]),
        "hallucination_rate": _rate([r["unsupported_count"] > 0 for r in answerable]) if verified else None,
        "mean_unsupported_atoms": _mean([r["unsupported_count"] for r in answerable]) if verified else None,
        "verified_rate": _rate([bool(r["verified"]) for r in answerable]) if verified else None,
        "correct_refusal_rate": _rate([r["refusal"] for r in unanswerable]) if unanswerable else None,
        "false_refusal_rate": _rate([r["refusal"] for r in answerable]) if answerable else None,
        "empty_answer_rate": _rate([not tokenize_zh(r["prediction"]) for r in answerable]),
        "latency_mean_s": _mean(latencies),
        "latency_p50_s": float(np.percentile(latencies, 50)) if latencies else None,
        "latency_p95_s": float(np.percentile(latencies, 95)) if latencies else None,
        "generated_tokens": sum(r["completion_tokens"] for r in rows),
        "tokens_per_second": sum(r["completion_tokens"] for r in rows) / gen_time if gen_time > 0 else None,
    }
    return out


def composite(aggregates: Mapping[str, Any], config: EvalConfig) -> dict[str, Any]:
    """The AHP-weighted composite of the normalized criteria (see ``Criterion.normalize``).

    Criteria without a value are dropped and the remaining weights renormalized to sum 1.
    """
    ahp = config.ahp()
    names = [c.metric for c in config.composite.criteria]
    used: dict[str, float] = {}
    weights: dict[str, float] = {}
    dropped = []
    for crit, w in zip(config.composite.criteria, ahp.weights, strict=True):
        value = aggregates.get(crit.metric)
        if value is None or (crit.reciprocal and value <= 0):
            dropped.append(crit.metric)
            continue
        used[crit.metric] = crit.normalize(float(value))
        weights[crit.metric] = w
    total = sum(weights.values())
    score = sum(used[k] * weights[k] / total for k in used) if total > 0 else None
    return {
        "score": score,
        "normalized": used,
        "weights": dict(zip(names, ahp.weights, strict=True)),
        "effective_weights": {k: w / total for k, w in weights.items()} if total > 0 else {},
        "dropped": dropped,
        "lambda_max": ahp.lambda_max,
        "ci": ahp.ci,
        "cr": ahp.cr,
    }


# --- the runner -------------------------------------------------------------------------------


class EvalRunner:
    """Answers, scores and reports test sets with one model.

    Args:
        config: metrics, generation and composite settings (None: the shipped eval.yaml).
        generator: the model (``kgqa.wiring.build_generator``).
        verifier: the answer verifier (None: ``Verifier(support_threshold=config.support_threshold)``).
        semantic: the similarity scorer (None: built from ``config.semantic_model`` when the
            ``semantic`` metric is on; skipped with a warning if no model loads).
        load_encoder: how the semantic scorer loads its encoder (``kgqa.wiring.build_encoder_loader``);
            None (and no ``semantic``): the semantic metric is skipped with a warning.
        progress: show tqdm bars.
    """

    def __init__(
        self,
        config: EvalConfig | None,
        generator: Generator,
        *,
        verifier: Verifier | None = None,
        semantic: SemanticScorer | None = None,
        load_encoder: EncoderLoader | None = None,
        progress: bool = True,
    ) -> None:
        self.config = config or EvalConfig.load()
        self.generator = generator
        self.verifier = verifier or Verifier(support_threshold=self.config.support_threshold)
        self._semantic = semantic
        self._load_encoder = load_encoder
        self.progress = progress

    def _on(self, metric: str) -> bool:
        return metric in self.config.metrics

    def _semantic_scorer(self) -> SemanticScorer | None:
        if self._semantic is None and self._on("semantic"):
            if self._load_encoder is None:
                log.warning("semantic_similarity_disabled", reason="no encoder loader given to EvalRunner")
                return None
            self._semantic = SemanticScorer.try_build(
                self.config.semantic_model, load_encoder=self._load_encoder
            )
        return self._semantic

    def run(
        self,
        test_sets: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]],
        out_dir: Path,
    ) -> dict[str, Any]:
        """Evaluate each test set (a bare list is one set named ``test``) and write the report.

        Returns:
            The content of ``metrics.json``.
        """
        sets = dict(test_sets) if isinstance(test_sets, Mapping) else {"test": list(test_sets)}
        ahp = self.config.ahp()
        out_dir.mkdir(parents=True, exist_ok=True)
        report: dict[str, Any] = {
            "model": asdict(self.generator.info),
            "config": self.config.model_dump(mode="json"),
            "config_source": self.config.source,
            "ahp": {
                "criteria": [c.metric for c in self.config.composite.criteria],
                "weights": ahp.weights,
                "lambda_max": ahp.lambda_max,
                "ci": ahp.ci,
                "cr": ahp.cr,
            },
            "test_sets": {},
        }
        scorer = self._semantic_scorer()
        report["semantic_model"] = scorer.model_path if scorer else None
        with (out_dir / PREDICTIONS).open("w", encoding="utf-8") as fh:
            for name, records in sets.items():
                records = list(records)[: self.config.limit] if self.config.limit else list(records)
                rows = self._evaluate_set(name, records, scorer)
                for row in rows:
                    row = {k: v for k, v in row.items() if not k.startswith("_")}
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                report["test_sets"][name] = self._summarize(rows)
                log.info(
                    "eval_test_set",
                    name=name,
                    n=len(rows),
                    composite=report["test_sets"][name]["composite"]["score"],
                )
        (out_dir / "metrics.json").write_text(
            json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        (out_dir / "metrics.md").write_text(render_markdown(report), encoding="utf-8")
        return report

    def _summarize(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        aggregates = aggregate(rows)
        by_qtype: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for r in rows:
            by_qtype[str(r.get("qtype") or "unknown")].append(r)
        return {
            "aggregates": aggregates,
            "intervals": intervals(
                rows, samples=self.config.bootstrap_samples, confidence=self.config.confidence, seed=0
            ),
            "composite": composite(aggregates, self.config),
            "per_qtype": {q: aggregate(rs) for q, rs in sorted(by_qtype.items())},
        }

    def _evaluate_set(
        self, name: str, records: Sequence[Mapping[str, Any]], scorer: SemanticScorer | None
    ) -> list[dict[str, Any]]:
        batch = self.config.generation.batch_size
        completions: list[Completion] = []
        shares: list[float] = []
        bar = tqdm(total=len(records), desc=f"eval {name}", unit="q", disable=not self.progress)
        for i in range(0, len(records), batch):
            chunk = records[i : i + batch]
            done = self.generator.generate([prompt_messages(r) for r in chunk])
            completions += done
            shares += [c.latency_s / len(chunk) for c in done]  # each call's time counted once
            bar.update(len(chunk))
        bar.close()
        refs: list[ReferenceScore | None] = [None] * len(records)
        if self._on("perplexity"):
            refs = list(
                self.generator.score_references(
                    [(prompt_messages(r), reference_answer(r) or "") for r in records]
                )
            )
        sims: list[float | None] = [None] * len(records)
        if scorer is not None:
            sims = list(
                scorer.similarities(
                    [c.text for c in completions], [reference_answer(r) or "" for r in records]
                )
            )
        return [
            self._score_record(name, rec, comp, ref, sim, share)
            for rec, comp, ref, sim, share in zip(records, completions, refs, sims, shares, strict=True)
        ]

    def _score_record(
        self,
        test_set: str,
        rec: Mapping[str, Any],
        comp: Completion,
        ref_score: ReferenceScore | None,
        similarity: float | None,
        call_share: float,
    ) -> dict[str, Any]:
        prediction, reference = comp.text, reference_answer(rec) or ""
        answerable = bool(rec.get("answerable", True))
        metrics: dict[str, Any] = {}
        if self._on("key_facts"):
            kf = key_fact_score(prediction, reference)
            metrics.update(key_fact_recall=kf.recall, key_facts=kf.facts, key_facts_missing=kf.missing)
        if self._on("token_f1"):
            metrics["token_f1"] = token_f1(prediction, reference)
        if self._on("bleu"):
            metrics["sentence_bleu"] = sentence_bleu(prediction, reference)
        if self._on("rouge_l"):
            metrics["rouge_l"] = rouge_l(prediction, reference)
        if similarity is not None:
            metrics["semantic_similarity"] = similarity
        if ref_score is not None:
            metrics.update(
                perplexity=ref_score.perplexity,
                reference_nll=ref_score.nll,
                reference_tokens=ref_score.tokens,
            )
        cites = citation_score(prediction, rec.get("gold_clause_ids") or [])
        if self._on("citations") and answerable:
            metrics.update(
                citation_precision=cites.precision, citation_recall=cites.recall, citation_f1=cites.f1
            )
        row: dict[str, Any] = {
            "id": rec.get("id"),
            "test_set": test_set,
            "qtype": rec.get("qtype"),
            "answerable": answerable,
            "question": rec.get("question")
            or next((m["content"] for m in reversed(prompt_messages(rec)) if m.get("role") == "user"), ""),
            "reference": reference,
            "prediction": prediction,
            "citations": cites.cited,
            "gold_clause_ids": list(rec.get("gold_clause_ids") or []),
            "refusal": is_refusal(prediction),
            "verified": None,
            "unsupported": [],
            "metrics": metrics,
            "latency_s": comp.latency_s,
            "completion_tokens": comp.completion_tokens,
            "prompt_tokens": comp.prompt_tokens,
            "model_id": self.generator.info.model_id,
            "_call_share_s": call_share,
        }
        if self._on("verification"):
            result = verify_record(self.verifier, prediction, rec)
            row["verified"] = result.verified
            row["unsupported"] = [
                {"kind": a.kind, "text": a.text, "normalized": a.normalized, "reason": a.reason}
                for a in result.unsupported
            ]
            row["unsupported_count"] = len(result.unsupported)
        return row


# --- the Markdown table -----------------------------------------------------------------------

_TABLE_ROWS = (
    ("n", "records", "{:d}"),
    ("key_fact_accuracy", "key-fact accuracy", "{:.3f}"),
    ("token_f1", "token F1 (jieba)", "{:.3f}"),
    ("bleu", "BLEU (corpus, zh)", "{:.2f}"),
    ("rouge_l", "ROUGE-L F", "{:.3f}"),
    ("semantic_similarity", "semantic similarity", "{:.3f}"),
    ("perplexity", "reference perplexity", "{:.2f}"),
    ("citation_precision", "citation precision", "{:.3f}"),
    ("citation_recall", "citation recall", "{:.3f}"),
    ("hallucination_rate", "hallucination rate", "{:.3f}"),
    ("mean_unsupported_atoms", "unsupported atoms / answer", "{:.2f}"),
    ("verified_rate", "verified rate", "{:.3f}"),
    ("correct_refusal_rate", "correct refusals (unanswerable)", "{:.3f}"),
    ("false_refusal_rate", "false refusals (answerable)", "{:.3f}"),
    ("empty_answer_rate", "empty answers (answerable)", "{:.3f}"),
    ("latency_mean_s", "latency mean (s)", "{:.3f}"),
    ("latency_p50_s", "latency p50 (s)", "{:.3f}"),
    ("latency_p95_s", "latency p95 (s)", "{:.3f}"),
    ("tokens_per_second", "generated tokens/s", "{:.1f}"),
)


def _cell(value: Any, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def render_markdown(report: Mapping[str, Any]) -> str:
    """``metrics.md``: the model, one column per test set, the composite and the AHP weights."""
    sets = report["test_sets"]
    model = report["model"]
    lines = [
        "# Evaluation",
        "",
        f"- model: `{model['model_id']}` ({model['backend']})",
        f"- base: `{model['base']}`",
        f"- adapter: `{model['adapter'] or '-'}`",
        "",
        f"Brackets: {report['config']['confidence']:.0%} bootstrap interval over the records the metric counts.",
        "",
        "| metric | " + " | ".join(sets) + " |",
        "|---|" + "---:|" * len(sets),
    ]
    for key, label, fmt in _TABLE_ROWS:
        cells = []
        for s in sets.values():
            ci = (s.get("intervals") or {}).get(key)
            cell = _cell(s["aggregates"].get(key), fmt)
            cells.append(f"{cell} [{ci['low']:.2f}, {ci['high']:.2f}]" if ci else cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(
        "| **composite (AHP)** | "
        + " | ".join(_cell(s["composite"]["score"], "{:.3f}") for s in sets.values())
        + " |"
    )
    ahp = report["ahp"]
    lines += [
        "",
        f"AHP weights (λmax = {ahp['lambda_max']:.3f}, CI = {ahp['ci']:.4f}, CR = {ahp['cr']:.4f}):",
        "",
        "| criterion | weight |",
        "|---|---:|",
    ]
    lines += [f"| {c} | {w:.3f} |" for c, w in zip(ahp["criteria"], ahp["weights"], strict=True)]
    for name, s in sets.items():
        if not s["per_qtype"]:
            continue
        lines += [
            "",
            f"## {name}: per question type",
            "",
            "| qtype | n | key facts | token F1 | ROUGE-L | citation R | hallucination |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        keys = ("key_fact_accuracy", "token_f1", "rouge_l", "citation_recall", "hallucination_rate")
        for q, a in s["per_qtype"].items():
            lines.append(f"| {q} | {a['n']} | " + " | ".join(_cell(a[k], "{:.3f}") for k in keys) + " |")
    return "\n".join(lines) + "\n"


def read_predictions(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """The rows of an eval folder's ``predictions.jsonl`` by test set (empty when there is none).

    Paired comparisons need them: two models' aggregates alone cannot tell a difference from the
    noise of a few dozen questions (``training.metrics.bootstrap.paired_difference``).
    """
    by_set: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in read_jsonl(Path(folder) / PREDICTIONS):
        by_set[str(row.get("test_set", "test"))].append(row)
    return dict(by_set)


__all__ = [
    "PREDICTIONS",
    "EvalRunner",
    "aggregate",
    "composite",
    "evidence_of",
    "load_test_sets",
    "prompt_messages",
    "read_predictions",
    "read_records",
    "reference_answer",
    "render_markdown",
    "verify_record",
]
