"""The dataset runner: graph snapshot -> candidate pairs -> scored, split, exported, reported.

One build reads the graph once (:class:`training.datagen.source.GraphSource`), so every pair of a
dataset is stamped with the same graph version. ``since`` makes the build incremental: pairs of
clauses that changed after that version (or whose clause version moved) are regenerated, the rest
are carried over from the previous build in the same folder, and every pair is scored and split
again so the dataset stays consistent as a whole.

Example::

    builder = DatasetBuilder.from_config(DatasetConfig.load(), GraphSource(driver))
    result = builder.build(Path("runs/dataset"))
    print(result.counts, result.coverage)
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from ingest.redact import Redactor
from kg.verifier import Verifier
from kgqa.errors import ConfigError
from training.datagen.augment import Paraphraser, augment
from training.datagen.export import dataset_hash, export_dataset
from training.datagen.llm import LlmGenerator, LlmJudge, LlmParaphraser, LlmTarget
from training.datagen.llm_client import ChatClient, PromptCache
from training.datagen.quality import QualityScorer
from training.datagen.report import build_report
from training.datagen.source import GraphSource
from training.datagen.splits import assign_splits, leak_check
from training.datagen.template_gen import TemplateGenerator
from training.datagen.templates import TemplateBank
from training.datagen.types import GraphSnapshot, QAPair, Rejection
from training.dataset_config import DatasetConfig

log = structlog.get_logger(__name__)

PAIRS_FILE = "pairs.jsonl"
REJECTED_FILE = "rejected.jsonl"
MANIFEST_FILE = "manifest.json"


@dataclass
class BuildResult:
    """What a build made, for the CLI's summary and ``--json``."""

    out_dir: str
    graph_version: int
    since: int | None
    pairs: int
    kept: int
    carried_over: int
    regenerated_clauses: int
    counts: dict[str, dict[str, int]]
    rejections: dict[str, int]
    coverage: dict[str, Any]
    seconds: float
    pairs_per_second: float
    llm_usage: dict[str, int] = field(default_factory=dict)
    dataset_hash: str = ""
    files: dict[str, str] = field(default_factory=dict)


class DatasetBuilder:
    """Runs the stages in order; every stage is handed in, so tests and the CLI share one path.

    Args:
        source: reads the graph snapshot.
        config: the resolved dataset config.
        generator: the template generator.
        scorer: quality scoring and banding (owns the verifier).
        paraphraser: rule-based or LLM-backed question paraphrases.
        llm: the LLM generator, or None for a templates-only build.
        llm_client: the client behind ``llm`` (its token and cache counts go into the manifest).
        redactor: the ingestion redactor, used as a last guard: a pair whose text still contains
            personal data (an LLM may invent some) is dropped, never exported.
    """

    def __init__(
        self,
        source: GraphSource,
        config: DatasetConfig,
        *,
        generator: TemplateGenerator,
        scorer: QualityScorer,
        paraphraser: Paraphraser,
        llm: LlmGenerator | None = None,
        llm_client: ChatClient | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self._source = source
        self._config = config
        self._generator = generator
        self._scorer = scorer
        self._paraphraser = paraphraser
        self._llm = llm
        self._redactor = redactor or Redactor()
        self._client = llm_client

    @classmethod
    def from_config(cls, config: DatasetConfig, source: GraphSource) -> DatasetBuilder:
        """The builder the CLI uses: templates from config, the LLM stage when it has a client."""
        config = config.seeded()
        bank = TemplateBank.load(config.templates)
        llm = judge = client = None
        if config.llm.client is not None:
            cache = PromptCache(config.llm.client.cache_dir) if config.llm.client.cache_dir else None
            client = ChatClient(config.llm.client, cache)
            llm = LlmGenerator(client)
            judge = LlmJudge(client) if config.llm.judge else None
        paraphraser = Paraphraser.from_yaml(
            llm=LlmParaphraser(client) if (client is not None and config.llm.paraphrase) else None
        )
        builder = cls(
            source,
            config,
            generator=TemplateGenerator(bank, config.generation),
            scorer=QualityScorer(
                Verifier(),
                config.quality,
                judge=_rescaled(judge) if judge else None,
                framing=[*bank.framing(), *paraphraser.framing()],
            ),
            paraphraser=paraphraser,
            llm=llm,
            llm_client=client,
        )
        return builder

    # -- the build ------------------------------------------------------------------------------

    def build(self, out_dir: Path, since: int | None = None) -> BuildResult:
        """Build (or, with ``since``, update) the dataset in ``out_dir``.

        Raises:
            ConfigError: ``since`` is given but ``out_dir`` holds no previous build, or ``since``
                is newer than the graph.
        """
        started = time.perf_counter()
        out_dir = Path(out_dir)
        snapshot = self._source.snapshot(since)
        if since is not None and since > snapshot.graph_version:
            raise ConfigError(f"--since {since} is newer than the graph (version {snapshot.graph_version})")
        previous = self._load_previous(out_dir) if since is not None else []
        carried, targets = self._carry_over(previous, snapshot)
        log.info(
            "dataset.snapshot",
            graph_version=snapshot.graph_version,
            clauses=len(snapshot.clauses),
            tables=len(snapshot.tables),
            carried=len(carried),
            targets="all" if targets is None else len(targets),
        )

        fresh, rejections = self._generator.generate(snapshot, clause_ids=targets)
        if any(not p.answerable for p in carried):  # unanswerable pairs teach no clause: keep the old
            fresh = [p for p in fresh if p.answerable]
        llm_pairs: list[QAPair] = []
        if self._llm is not None:
            llm_pairs, llm_rejections = self._llm.generate(snapshot, self._llm_targets(snapshot, targets))
            rejections += llm_rejections
        fresh = augment([*fresh, *llm_pairs], self._config.augment, self._paraphraser)
        pairs = self._dedupe([*carried, *fresh])

        self._scorer.score(pairs, snapshot)
        if self._llm is not None:
            pairs, regenerated = self._regenerate(pairs, snapshot)
            rejections += regenerated
        self._drop_personal_data(pairs)
        previous_splits = {
            cid: p.split for p in previous if p.split in ("train", "val", "test_unseen") for cid in p.gold
        }
        assign_splits(pairs, self._config.splits, previous=previous_splits or None)
        problems = leak_check(pairs)
        if problems:  # a bug, not bad input: never export a leaking split
            raise ConfigError("split leak: " + "; ".join(problems[:5]))

        out_dir.mkdir(parents=True, exist_ok=True)
        files = export_dataset(
            pairs, snapshot, out_dir, graph_version=snapshot.graph_version, config=self._config.export
        )
        self._write_jsonl(out_dir / PAIRS_FILE, [p.to_dict() for p in pairs])
        self._write_jsonl(out_dir / REJECTED_FILE, self._rejection_rows(pairs, rejections))
        seconds = time.perf_counter() - started
        usage = self._llm_usage()
        report = build_report(
            pairs,
            rejections,
            snapshot,
            out_dir,
            extra={"since": since, "seconds": round(seconds, 3), "llm_usage": usage},
        )
        digest = dataset_hash(out_dir)
        result = BuildResult(
            out_dir=str(out_dir),
            graph_version=snapshot.graph_version,
            since=since,
            pairs=len(pairs),
            kept=sum(p.band in ("sft", "grpo") for p in pairs),
            carried_over=len(carried),
            regenerated_clauses=len(snapshot.clauses) if targets is None else len(targets),
            counts=report.get("counts", {}),
            rejections=dict(
                Counter(r.reason for r in rejections)
                + Counter(
                    p.reject_reason.split(":")[0] for p in pairs if p.band == "drop" and p.reject_reason
                )
            ),
            coverage=report.get("coverage", {}),
            seconds=round(seconds, 3),
            pairs_per_second=round(len(pairs) / seconds, 1) if seconds > 0 else 0.0,
            llm_usage=usage,
            dataset_hash=digest,
            files={k: str(v) for k, v in files.items()},
        )
        self._write_manifest(out_dir, result)
        log.info("dataset.built", pairs=result.pairs, kept=result.kept, seconds=result.seconds)
        return result

    # -- stages ---------------------------------------------------------------------------------

    @staticmethod
    def _load_previous(out_dir: Path) -> list[QAPair]:
        path = out_dir / PAIRS_FILE
        if not path.is_file():
            raise ConfigError(f"{out_dir}: --since needs the previous build's {PAIRS_FILE} in this folder")
        pairs = []
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    pairs.append(QAPair.from_dict(json.loads(line)))
                except (json.JSONDecodeError, TypeError) as exc:
                    raise ConfigError(f"{path}:{n}: not a pair record: {exc}") from exc
        return pairs

    @staticmethod
    def _carry_over(
        previous: Sequence[QAPair], snapshot: GraphSnapshot
    ) -> tuple[list[QAPair], set[str] | None]:
        """Pairs still valid as they are, and the clause ids to generate for (None: all).

        A pair is carried over when every clause it teaches is active at the version it was
        written from and did not change after ``since``; otherwise its active clauses are
        regenerated. Pairs of retired clauses vanish with their clause.
        """
        if snapshot.changed_since is None:
            return [], None
        changed = set(snapshot.changed_since)
        targets = {cid for cid in changed if cid in snapshot.clauses}
        carried = []
        for pair in previous:
            current = {cid: snapshot.clauses[cid].version for cid in pair.gold if cid in snapshot.clauses}
            stale = len(current) < len(pair.gold) or current != pair.gold or changed & set(pair.gold)
            if not stale and all(cid in snapshot.clauses for cid in pair.context_ids):
                carried.append(pair)
            else:
                targets |= set(current)
        return carried, targets

    def _llm_targets(self, snapshot: GraphSnapshot, targets: set[str] | None) -> list[LlmTarget]:
        cfg = self._config.llm
        ids = sorted(snapshot.clauses if targets is None else targets)
        out: list[LlmTarget] = []
        for i, cid in enumerate(ids):
            for j in range(cfg.per_clause):
                qtype = cfg.qtypes[(i + j) % len(cfg.qtypes)]
                difficulty = ("基础", "进阶", "综合")[(i + j) % 3]
                style = ("formal", "everyday")[(i + j) % 2]
                out.append(LlmTarget(qtype, (cid,), difficulty, style, False))
        return out[: cfg.max_targets] if cfg.max_targets is not None else out

    def _regenerate(
        self, pairs: list[QAPair], snapshot: GraphSnapshot
    ) -> tuple[list[QAPair], list[Rejection]]:
        """Ask again for LLM pairs the verifier rejected, up to ``max_regenerations`` times.

        A regenerated pair replaces the failed one together with its variants, gets variants of its
        own, and the whole list is scored again, so it is checked against every kept pair
        (near-duplicates) exactly like a first-time pair.
        """
        assert self._llm is not None
        rejections: list[Rejection] = []
        for attempt in range(1, self._config.llm.max_regenerations + 1):
            failed = [
                p
                for p in pairs
                if p.generator.startswith("llm:") and p.band == "drop" and p.augmentation == "none"
            ]
            replaced: dict[str, QAPair] = {}
            for pair in failed:
                new = self._llm.regenerate(pair, snapshot, attempt)
                if new is not None:
                    new.extra["attempt"] = attempt
                    replaced[pair.pair_id] = new
                    rejections.append(
                        Rejection("regenerated", pair.qtype, list(pair.gold), pair.reject_reason or "")
                    )
            if not replaced:
                break
            fresh = augment(list(replaced.values()), self._config.augment, self._paraphraser)
            pairs = [p for p in pairs if p.pair_id not in replaced and p.parent_id not in replaced] + fresh
            self._scorer.score(pairs, snapshot)
        return pairs, rejections

    def _drop_personal_data(self, pairs: list[QAPair]) -> None:
        for pair in pairs:
            _, found = self._redactor.redact(f"{pair.question}\n{pair.answer}")
            if found:
                pair.band = "drop"
                pair.reject_reason = "personal_data:" + ",".join(sorted(found))

    @staticmethod
    def _dedupe(pairs: list[QAPair]) -> list[QAPair]:
        seen: dict[str, QAPair] = {}
        for pair in pairs:
            seen.setdefault(pair.pair_id, pair)
        return list(seen.values())

    def _llm_usage(self) -> dict[str, int]:
        return self._client.usage.to_dict() if self._client is not None else {}

    @staticmethod
    def _rejection_rows(pairs: Sequence[QAPair], rejections: Sequence[Rejection]) -> list[dict[str, Any]]:
        rows = [asdict(r) for r in rejections]
        rows += [
            {
                "reason": p.reject_reason or "dropped",
                "qtype": p.qtype,
                "clause_ids": sorted(p.gold),
                "detail": p.pair_id,
                "question": p.question,
            }
            for p in pairs
            if p.band == "drop"
        ]
        return rows

    @staticmethod
    def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        tmp.replace(path)

    def _write_manifest(self, out_dir: Path, result: BuildResult) -> None:
        manifest = {
            **asdict(result),
            "seed": self._config.seed,
            "config": json.loads(self._config.model_dump_json()),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        path = out_dir / MANIFEST_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8")
        tmp.replace(path)


def _rescaled(judge: LlmJudge):
    """The LLM judge's 1..5 score as the quality stage's 0..1 (None when the reply had no score)."""

    def score(pair: QAPair, snapshot: GraphSnapshot) -> float | None:
        value, _reason = judge.judge(pair, snapshot)
        return None if value is None else (value - 1.0) / 4.0

    return score


def load_manifest(data_dir: Path) -> dict[str, Any]:
    """A dataset's manifest (graph version, dataset hash, config): what training records as provenance."""
    path = Path(data_dir) / MANIFEST_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"{path}: no dataset manifest here ({exc.strerror}); build one with kgqa dataset build"
        ) from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: the dataset manifest is not valid JSON: {exc}") from exc


__all__ = ["MANIFEST_FILE", "PAIRS_FILE", "BuildResult", "DatasetBuilder", "load_manifest"]
