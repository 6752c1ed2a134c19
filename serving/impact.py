"""What an edit touches, before and after: the impact report of ``kgqa kg impact`` and the
``Impact`` RPC.

For a clause (or a triple's clause, or the clauses mentioning an entity) it gathers:

- the QA pairs of the current dataset (its ``pairs.jsonl``, ``$KGQA_HOME/dataset`` by default:
  the composition root names the file, serving does not import training) written from that clause, and whether they were written from an older version (stale);
- the registered models trained on a graph version older than the target's last change (stale:
  they learned the old text);
- the past answers that cited an older version of the clause (for auditors);
- whether the retrieval index has caught up with the last change (the persisted snapshot's
  graph version; serving processes persist each update).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kg.audit import AuditStore
from kg.edits import GraphEditor
from kg.registry import ModelRegistry


@dataclass(frozen=True)
class ImpactPair:
    """A dataset pair written from an impacted clause; ``stale`` when from an older version."""

    pair_id: str
    question: str
    split: str | None
    clause_id: str
    clause_version: int
    stale: bool


@dataclass(frozen=True)
class ImpactModel:
    """A registered model and the graph version it was trained on."""

    model_id: str
    kind: str
    graph_version: int
    active: bool


@dataclass(frozen=True)
class ImpactAnswer:
    """A past answer that cited an older version of an impacted clause."""

    answer_id: str
    question: str
    status: str
    created_at: str
    clause_id: str
    clause_version: int
    model_id: str


@dataclass
class ImpactReport:
    """Everything an edit of ``target_id`` touches (see the module docstring).

    Attributes:
        target_id: the clause, triple or entity id asked about.
        clause_ids: the clauses it touches, with their active versions in ``clause_versions``.
        last_change: the seq of the newest Change of the target or its clauses (None: unchanged).
        graph_version: the graph version now.
        dataset_dir: where the dataset was looked for; ``dataset_found`` whether it was there.
        pairs: dataset pairs written from the clauses (``stale`` ones from older versions).
        stale_models: models trained before ``last_change``.
        answers_citing_old: past answers citing an older version of the clauses.
        index_graph_version: the graph version of the retrieval index in use (None: none built).
        index_caught_up: the index includes ``last_change``.
    """

    target_id: str
    clause_ids: list[str]
    clause_versions: dict[str, int]
    last_change: int | None
    graph_version: int
    dataset_dir: str
    dataset_found: bool
    pairs: list[ImpactPair] = field(default_factory=list)
    stale_models: list[ImpactModel] = field(default_factory=list)
    answers_citing_old: list[ImpactAnswer] = field(default_factory=list)
    index_graph_version: int | None = None
    index_caught_up: bool = False


class ImpactAnalyzer:
    """Builds :class:`ImpactReport` from the graph, the dataset folder and the index folder.

    Args:
        editor: the graph editor (its reads of clauses and the change log).
        registry: the model registry.
        audit: the audit store (answers citing a clause).
        dataset_pairs: the current dataset's pairs file (``training.dataset.PAIRS_FILE`` in its folder).
        index_version: returns the retrieval index's graph version (None: no index).
        answers_limit: at most this many past answers per clause.
    """

    def __init__(
        self,
        editor: GraphEditor,
        registry: ModelRegistry,
        audit: AuditStore,
        dataset_pairs: Path,
        index_version: Callable[[], int | None],
        answers_limit: int = 200,
    ) -> None:
        self._editor = editor
        self._registry = registry
        self._audit = audit
        self._pairs_file = Path(dataset_pairs)
        self._index_version = index_version
        self._limit = answers_limit

    def impact(self, target_id: str) -> ImpactReport:
        """The impact of (edits of) ``target_id``.

        Raises:
            NotFound: no clause, triple or entity has this id.
        """
        clause_ids = self._editor.clauses_of(target_id)
        if not clause_ids:
            self._editor.current_version(target_id)  # raises NotFound for unknown ids
        versions = self._editor.active_versions(clause_ids)
        last = self._editor.last_change([target_id, *clause_ids])
        pairs, found = self._pairs(set(clause_ids), versions)
        models = []
        if last is not None:
            models = [
                ImpactModel(m.model_id, m.kind, m.graph_version, m.active)
                for m in self._registry.list()
                if m.graph_version is not None and m.graph_version < last
            ]
        answers = [
            ImpactAnswer(a.answer_id, a.question, a.status, a.created_at, cid, a.clause_version, a.model_id)
            for cid, a in self._audit.citing_older(clause_ids, versions, self._limit)
        ]
        index_version = self._index_version()
        return ImpactReport(
            target_id=target_id,
            clause_ids=clause_ids,
            clause_versions=versions,
            last_change=last,
            graph_version=self._editor.graph_version(),
            dataset_dir=str(self._pairs_file.parent),
            dataset_found=found,
            pairs=pairs,
            stale_models=models,
            answers_citing_old=answers,
            index_graph_version=index_version,
            index_caught_up=index_version is not None and (last is None or index_version >= last),
        )

    def _pairs(self, clause_ids: set[str], versions: dict[str, int]) -> tuple[list[ImpactPair], bool]:
        path = self._pairs_file
        if not path.is_file():
            return [], False
        out: list[ImpactPair] = []
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                for cid, version in (row.get("gold") or {}).items():
                    if cid in clause_ids:
                        stale = cid not in versions or int(version) < versions[cid]
                        out.append(
                            ImpactPair(
                                row.get("pair_id", ""),
                                row.get("question", ""),
                                row.get("split"),
                                cid,
                                int(version),
                                stale,
                            )  # fmt: skip
                        )
        return out, True


__all__ = ["ImpactAnalyzer", "ImpactAnswer", "ImpactModel", "ImpactPair", "ImpactReport"]
