"""The QA service layer: the one place that answers, verifies, audits and authorizes.

gRPC servicers, REST routers and the CLI translate their inputs into calls on
:class:`QAService` and its results back; none of them holds logic of its own.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Literal, Protocol

import structlog

from ingest.redact import Redactor
from kg.audit import (
    AnswerFilter,
    AnswerListing,
    AuditCitation,
    AuditEntry,
    AuditStore,
    ChainReport,
    StoredEntry,
)
from kg.audit_writer import AuditWriter
from kg.breaker import CircuitBreaker
from kg.citations import parse_citations, strip_markers
from kg.evidence import EvidenceClause, EvidenceRead
from kg.guard import graph_deadline
from kg.prompting import REFUSAL_ANSWER
from kg.reader import ClauseView, DocumentOutline, DocumentSummary, GraphReader
from kg.registry import ModelRegistry, ModelVersion
from kg.verifier import VerificationResult, Verifier, is_refusal
from kgqa.errors import DeadlineExceeded, NotReady, PermissionDenied
from serving.backends.base import AnswerBackend
from serving.backends.extractive import ExtractiveBackend
from serving.types import (
    AnswerRecord,
    AnswerResult,
    AnswerStatus,
    AnswerSummary,
    AnswerTrace,
    Caller,
    Citation,
    CitationTrace,
    Generation,
    RetrievedClause,
    Role,
    Timings,
    UnsupportedAtom,
)
from serving.validation import validate_chain_position, validate_k, validate_question

log = structlog.get_logger(__name__)


class Retriever(Protocol):
    def retrieve(self, question: str, k: int) -> list[RetrievedClause]: ...


class Evidence(Protocol):
    """Where answers are verified: ``kg.evidence.SnapshotEvidence`` (memory first) or
    ``GraphEvidence`` (always Neo4j)."""

    def read(self, clause_ids: list[str], expected: Mapping[str, int] | None = None) -> EvidenceRead: ...

    def fetch_versions(self, refs: list[tuple[str, int]]) -> Mapping[tuple[str, int], EvidenceClause]: ...

    def fetch_latest(self, clause_ids: list[str]) -> Mapping[str, EvidenceClause]: ...


@dataclass
class ServiceConfig:
    """Behaviour of the answer path.

    Attributes:
        policy: ``strict`` replaces an unverified generation by the extractive answer; ``flag``
            returns it marked UNVERIFIED.
        default_k: clauses retrieved when the request leaves k at 0.
        max_k: the largest k a caller may ask for.
        max_question_chars: longer questions are refused with INVALID_ARGUMENT.
        stream_chunk_chars: size of the text deltas when a verified answer is streamed.
        request_deadline_s: the time one request may spend reaching the graph, retries included
            (all its graph calls share it; a caller's earlier deadline wins). Generation is
            bounded by the caller's deadline only.
        audit_sync_s: how long an auditor's read waits for this process's answers still on their
            way to the graph (read-your-writes within a process).
    """

    policy: Literal["strict", "flag"] = "strict"
    default_k: int = 5
    max_k: int = 20
    max_question_chars: int = 2000
    stream_chunk_chars: int = 24
    request_deadline_s: float = 5.0
    audit_sync_s: float = 5.0


class BackendHolder:
    """The active answer backend; swapped atomically when another model is activated."""

    def __init__(self, backend: AnswerBackend) -> None:
        self._backend = backend
        self._lock = threading.Lock()

    def get(self) -> AnswerBackend:
        with self._lock:
            return self._backend

    def set(self, backend: AnswerBackend) -> None:
        with self._lock:
            self._backend = backend


def require(caller: Caller, role: Role) -> None:
    """Authorization lives here, once, for every transport."""
    if caller.role < role:
        raise PermissionDenied(
            f"this needs role {role.name.lower()}; key {caller.key_id} has {caller.role.name.lower()}"
        )


def _followed(
    contexts: list[RetrievedClause], evidence: Mapping[str, EvidenceClause]
) -> list[RetrievedClause]:
    """The contexts with the evidence's newer text where the graph moved on since retrieval's
    index was built (a clause edited seconds ago): the extractive fallback then quotes the text
    that verifies, not the superseded one, before the index catches up."""
    out = []
    for c in contexts:
        ev = evidence.get(c.clause_id)
        if ev is not None and ev.active and ev.version > c.version:
            c = replace(c, version=ev.version, text=ev.text, doc_version=ev.doc_version)
        out.append(c)
    return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _check_deadline(deadline: float | None, stage: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise DeadlineExceeded(f"deadline passed during {stage}; retry with a longer deadline")


class QAService:
    """Answers questions with graph-verified citations and records every answer for audit.

    Args:
        retriever: hybrid retrieval over the clause graph.
        backends: holder of the active answer backend.
        evidence: the cited clause versions (memory first, Neo4j for the rest).
        verifier: the kg verifier.
        audit: the hash-chained audit store (auditors' reads).
        writer: appends answers to the audit trail in groups; an Ask returns once its answer is
            durable (started; :meth:`close` stops it).
        reader: graph reads for provenance and the graph version.
        redactor: strips personal data from questions before they are stored.
        config: policy and limits.
        breaker: the circuit breaker the graph calls pass (its state is the graph's health);
            None when the components were given a bare driver.
        registry: the model registry, for the admin's model pages; None = not offered.
    """

    def __init__(
        self,
        retriever: Retriever,
        backends: BackendHolder,
        evidence: Evidence,
        verifier: Verifier,
        audit: AuditStore,
        writer: AuditWriter,
        reader: GraphReader,
        redactor: Redactor,
        config: ServiceConfig | None = None,
        breaker: CircuitBreaker | None = None,
        registry: ModelRegistry | None = None,
    ) -> None:
        self._retriever = retriever
        self._backends = backends
        self._evidence = evidence
        self._verifier = verifier
        self._audit = audit
        self._writer = writer
        self._reader = reader
        self._redactor = redactor
        self.config = config or ServiceConfig()
        self.breaker = breaker
        self._registry = registry
        self._extractive = ExtractiveBackend()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the background work: the audit writer drains its queue into the graph (within
        ``timeout``; what is left stays in its journal for the next start) and the evidence
        snapshot stops following the graph. Call after the transports stopped."""
        self._writer.close(timeout)
        stop = getattr(self._evidence, "stop", None)
        if stop is not None:
            stop()

    @property
    def audit_writer(self) -> AuditWriter:
        return self._writer

    @property
    def model_id(self) -> str:
        return self._backends.get().model_id

    @property
    def backends(self) -> BackendHolder:
        """The holder the registry sync swaps adapters in (serving/model_sync.py)."""
        return self._backends

    def active_backend(self) -> AnswerBackend:
        """The backend answering now (follows model activation)."""
        return self._backends.get()

    def retrieve(
        self, question: str, k: int | None, *, deadline: float | None = None
    ) -> list[RetrievedClause]:
        """Evidence for a question; used by chat completions, which are neither verified nor audited."""
        k = validate_k(k, self.config.default_k, self.config.max_k)
        self._require_graph()
        with self._graph_budget(deadline):
            return self._retriever.retrieve(question, k)

    def _graph_limit(self, deadline: float | None) -> float:
        """When this request's graph calls stop retrying: the request deadline or the caller's."""
        limit = time.monotonic() + self.config.request_deadline_s
        return limit if deadline is None else min(limit, deadline)

    def _graph_budget(self, deadline: float | None) -> contextlib.AbstractContextManager[None]:
        return graph_deadline(self._graph_limit(deadline))

    # -- answering ----------------------------------------------------------------------------
    def _prepare(self, question: str, k: int | None, caller: Caller) -> tuple[str, int]:
        require(caller, Role.READER)
        text = validate_question(question, self.config.max_question_chars)
        k = validate_k(k, self.config.default_k, self.config.max_k)
        self._require_graph()
        return text, k

    def _require_graph(self) -> None:
        """Refuse at once while the graph is known to be down: every answer is verified against
        it and recorded in it, so retrieval and generation would be work thrown away."""
        if self.breaker is not None:
            self.breaker.check()

    def ask(
        self, question: str, k: int | None, caller: Caller, *, deadline: float | None = None
    ) -> AnswerResult:
        question, k = self._prepare(question, k, caller)
        with graph_deadline(self._graph_limit(deadline)):
            t0 = time.perf_counter()
            contexts = self._retriever.retrieve(question, k)
            t1 = time.perf_counter()
            _check_deadline(deadline, "retrieval")
            generation = self._generate(question, contexts, deadline)
            t2 = time.perf_counter()
            return self._finish(question, contexts, generation, caller, t0, t1, t2, deadline)

    def ask_stream(
        self, question: str, k: int | None, caller: Caller, *, deadline: float | None = None
    ) -> Iterator[str | AnswerResult]:
        """Text deltas, then the final AnswerResult.

        Under ``strict`` the answer is verified before any text is sent (an unverified generation
        is replaced, and a client must never have seen it); under ``flag`` the backend's deltas
        are relayed live and the final message carries the verification.
        """
        question, k = self._prepare(question, k, caller)
        # One graph deadline for the request, entered around each stretch of graph work: a
        # context entered in a generator must not stay open across its yields.
        limit = self._graph_limit(deadline)
        t0 = time.perf_counter()
        with graph_deadline(limit):
            contexts = self._retriever.retrieve(question, k)
        t1 = time.perf_counter()
        _check_deadline(deadline, "retrieval")
        if self.config.policy == "flag" and contexts:
            backend = self._backends.get()
            parts: list[str] = []
            for delta in backend.stream(question, contexts, deadline=deadline):
                parts.append(delta)
                yield delta
            generation = Generation("".join(parts), backend.model_id)
            t2 = time.perf_counter()
            with graph_deadline(limit):
                final = self._finish(question, contexts, generation, caller, t0, t1, t2, deadline)
            yield final
            return
        with graph_deadline(limit):
            generation = self._generate(question, contexts, deadline)
            t2 = time.perf_counter()
            result = self._finish(question, contexts, generation, caller, t0, t1, t2, deadline)
        step = self.config.stream_chunk_chars
        for i in range(0, len(result.text), step):
            yield result.text[i : i + step]
        yield result

    def _generate(self, question: str, contexts: list[RetrievedClause], deadline: float | None) -> Generation:
        if not contexts:
            return Generation(REFUSAL_ANSWER, self._backends.get().model_id)
        return self._backends.get().generate(question, contexts, deadline=deadline)

    def _finish(
        self,
        question: str,
        contexts: list[RetrievedClause],
        generation: Generation,
        caller: Caller,
        t0: float,
        t1: float,
        t2: float,
        deadline: float | None,
    ) -> AnswerResult:
        text, model_id = generation.text, generation.model_id
        verification, evidence, version = self._verify(text, contexts)
        if not contexts or (is_refusal(text) and not verification.citations):
            status = AnswerStatus.NO_EVIDENCE
            text, verification, evidence = REFUSAL_ANSWER, VerificationResult(False, [], [], [], []), {}
        elif verification.verified:
            status = AnswerStatus.VERIFIED
        elif self.config.policy == "strict":
            log.info("answer.replaced", model_id=model_id, unsupported=len(verification.unsupported))
            # One read of every context's evidence, then the quotes are taken from it and checked
            # against it: read twice, an edit landing in between (the snapshot refreshing) would
            # check a quote of the old text against the new one.
            read = self._evidence.read(
                [c.clause_id for c in contexts], {c.clause_id: c.version for c in contexts}
            )
            contexts = _followed(contexts, read.clauses)
            fallback = self._extractive.generate(question, contexts)
            text = fallback.text
            model_id = f"{model_id} (extractive fallback)" if model_id != fallback.model_id else model_id
            evidence, version = read.clauses, read.graph_version
            verification = self._verifier.verify_against(text, evidence)
            status = AnswerStatus.VERIFIED if verification.verified else AnswerStatus.UNVERIFIED
        else:
            status = AnswerStatus.UNVERIFIED
        t3 = time.perf_counter()
        citations = self._citations(verification, evidence)
        unsupported = [
            UnsupportedAtom(a.kind, a.text, a.normalized, a.sentence) for a in verification.unsupported
        ]
        timings = Timings(
            retrieval_ms=round((t1 - t0) * 1000, 2),
            generation_ms=round((t2 - t1) * 1000, 2),
            verification_ms=round((t3 - t2) * 1000, 2),
            total_ms=round((t3 - t0) * 1000, 2),
        )
        stored_question = self.storable_question(question)
        result = AnswerResult(
            answer_id=str(uuid.uuid4()),
            question=stored_question,
            text=text,
            status=status,
            citations=citations,
            unsupported=unsupported,
            model_id=model_id,
            graph_version=0,  # the evidence's version, or stamped where the answer is recorded
            timings=timings,
            created_at=_now(),
        )
        entry = self._audit_entry(result, caller)
        entry.graph_version = version
        result.graph_version = self._writer.append(entry, deadline=deadline).graph_version or 0
        return result

    def _verify(
        self, text: str, contexts: list[RetrievedClause]
    ) -> tuple[VerificationResult, Mapping[str, EvidenceClause], int | None]:
        """Verify against the cited clauses at the versions retrieval handed to the answer (from
        memory when the evidence snapshot has them); also the graph version that evidence is of."""
        ids = parse_citations(text).clause_ids
        read = self._evidence.read(ids, {c.clause_id: c.version for c in contexts})
        return self._verifier.verify_against(text, read.clauses), read.clauses, read.graph_version

    @staticmethod
    def _citations(
        verification: VerificationResult, evidence: Mapping[str, EvidenceClause]
    ) -> list[Citation]:
        out: list[Citation] = []
        for check in verification.citations:
            ev = evidence.get(check.clause_id)
            if ev is None:
                continue
            out.append(
                Citation(
                    clause_id=ev.clause_id,
                    clause_version=ev.version,
                    document_id=ev.doc_id,
                    document_title=ev.doc_title,
                    document_version=ev.doc_version,
                    clause_number=ev.number,
                    section_path=list(ev.section_path),
                    page_start=ev.page_start,
                    page_end=ev.page_end,
                    quote=check.quote,
                    quote_start=check.quote_start,
                    quote_end=check.quote_end,
                    support_score=round(float(check.support_score), 4),
                    verified=check.verified,
                    asserted=check.asserted,
                )
            )
        return out

    @staticmethod
    def _audit_entry(result: AnswerResult, caller: Caller) -> AuditEntry:
        return AuditEntry(
            answer_id=result.answer_id,
            question=result.question,
            answer=result.text,
            status=result.status.value,
            model_id=result.model_id,
            graph_version=None,  # _finish sets the evidence's version (None: stamped where recorded)
            at=result.created_at,
            actor=caller.key_id,
            unsupported_json=json.dumps([asdict(u) for u in result.unsupported], ensure_ascii=False),
            timings_json=json.dumps(asdict(result.timings)),
            citations=[
                AuditCitation(
                    c.clause_id,
                    c.clause_version,
                    c.quote,
                    c.quote_start,
                    c.quote_end,
                    c.support_score,
                    c.verified,
                )
                for c in result.citations
            ],
        )

    def storable_question(self, question: str) -> str:
        """``question`` as it may be kept anywhere beyond the request (the audit trail, the
        console's stream tickets): personal data replaced, by the service's one redactor."""
        return self._redactor.redact(question)[0]

    # -- audit and provenance -----------------------------------------------------------------
    def _audit_read(self, caller: Caller) -> None:
        """Before an auditor's read of the trail (role auditor): wait for this process's answers
        still on their way to the graph, so an answer just given is found."""
        require(caller, Role.AUDITOR)
        self._writer.sync(self.config.audit_sync_s)

    def get_answer(self, answer_id: str, caller: Caller) -> AnswerRecord:
        self._audit_read(caller)
        with self._graph_budget(None):
            stored: StoredEntry = self._audit.get(answer_id)
            versions = self._cited_versions(stored)
        return self._record(stored, versions)

    def trace_answer(self, answer_id: str, caller: Caller) -> AnswerTrace:
        """An answer's record with each cited clause as it was then and as it reads now (role auditor).

        Two batched reads whatever the number of citations: the cited versions (from memory when
        the snapshot holds them: a version never changes), and the version of each cited clause
        the graph holds now (always from Neo4j: right after an edit the snapshot may not have it).
        """
        self._audit_read(caller)
        with self._graph_budget(None):
            stored: StoredEntry = self._audit.get(answer_id)
            versions = self._cited_versions(stored)
            latest = self._evidence.fetch_latest([c.clause_id for c in stored.entry.citations])
        record = self._record(stored, versions)
        traces = [
            CitationTrace(
                citation=cit,
                then=versions.get((c.clause_id, c.clause_version)),
                now=latest.get(c.clause_id),
            )
            for cit, c in zip(record.answer.citations, stored.entry.citations, strict=True)
        ]
        return AnswerTrace(record, traces)

    def _cited_versions(self, stored: StoredEntry) -> dict[tuple[str, int], EvidenceClause]:
        return self._evidence.fetch_versions(
            [(c.clause_id, c.clause_version) for c in stored.entry.citations]
        )

    @staticmethod
    def _record(stored: StoredEntry, versions: Mapping[tuple[str, int], EvidenceClause]) -> AnswerRecord:
        e = stored.entry
        citations = []
        for c in e.citations:
            ev = versions.get((c.clause_id, c.clause_version))
            citations.append(
                Citation(
                    clause_id=c.clause_id,
                    clause_version=c.clause_version,
                    document_id=ev.doc_id if ev else "",
                    document_title=ev.doc_title if ev else "",
                    document_version=ev.doc_version if ev else 0,
                    clause_number=ev.number if ev else "",
                    section_path=list(ev.section_path) if ev else [],
                    page_start=ev.page_start if ev else 0,
                    page_end=ev.page_end if ev else 0,
                    quote=c.quote,
                    quote_start=c.quote_start,
                    quote_end=c.quote_end,
                    support_score=c.support_score,
                    verified=c.verified,
                )
            )
        answer = AnswerResult(
            answer_id=e.answer_id,
            question=e.question,
            text=e.answer,
            status=AnswerStatus(e.status),
            citations=citations,
            unsupported=[UnsupportedAtom(**u) for u in json.loads(e.unsupported_json or "[]")],
            model_id=e.model_id,
            graph_version=e.graph_version,
            timings=Timings(**json.loads(e.timings_json or "{}")),
            created_at=e.at,
        )
        return AnswerRecord(answer, e.actor, stored.seq, stored.record_hash, stored.prev_hash)

    def get_clause(self, clause_id: str, version: int | None, caller: Caller) -> ClauseView:
        require(caller, Role.READER)
        with self._graph_budget(None):
            return self._reader.clause(clause_id, version or None)

    def list_answers_citing(self, clause_id: str, caller: Caller, limit: int = 50) -> list[AnswerSummary]:
        self._audit_read(caller)
        limit = validate_k(limit, 50, 1000, "limit")
        with self._graph_budget(None):
            rows = self._audit.citing(clause_id, limit)
        return [
            AnswerSummary(
                answer_id=r.answer_id,
                question=r.question,
                status=AnswerStatus(r.status),
                created_at=r.created_at,
                clause_version=r.clause_version,
                quote=r.quote,
                model_id=r.model_id,
            )
            for r in rows
        ]

    def search_answers(
        self, where: AnswerFilter, caller: Caller, limit: int = 50, before_seq: int | None = None
    ) -> list[AnswerListing]:
        """The audit trail narrowed by ``where``, newest first (role auditor); page on with ``before_seq``."""
        self._audit_read(caller)
        limit = validate_k(limit, 50, 10_000, "limit")
        with self._graph_budget(None):
            return self._audit.search(where, limit, before_seq)

    def verify_audit_chain_step(self, after: int, prev: str, caller: Caller, limit: int) -> ChainReport:
        """One step of the chain check: ``limit`` records after record ``after`` (hash ``prev``).

        What a page that must answer in a bounded time runs: the whole check is these steps in a
        row, each given the last one's ``checked`` and ``last_hash`` (role auditor). ``limit`` is
        the server's setting (``ConsoleConfig.chain_step``, checked there), not the caller's.
        """
        require(caller, Role.AUDITOR)
        after, prev = validate_chain_position(after, prev)
        with self._graph_budget(None):
            return self._audit.verify_chain_step(after, prev, limit)

    def list_documents(self, caller: Caller) -> list[DocumentSummary]:
        require(caller, Role.READER)
        with self._graph_budget(None):
            return self._reader.documents()

    def document_outline(self, doc_id: str, caller: Caller) -> DocumentOutline:
        require(caller, Role.READER)
        with self._graph_budget(None):
            return self._reader.outline(doc_id)

    # -- models (role admin) ------------------------------------------------------------------
    def _models(self, caller: Caller) -> ModelRegistry:
        require(caller, Role.ADMIN)
        if self._registry is None:
            raise NotReady("this service was started without the model registry")
        return self._registry

    def list_models(self, caller: Caller) -> list[ModelVersion]:
        registry = self._models(caller)
        with self._graph_budget(None):
            return registry.list()

    def activate_model(self, model_id: str, caller: Caller) -> ModelVersion:
        """Make ``model_id`` the active model; serving processes switch to it without a restart."""
        registry = self._models(caller)
        with self._graph_budget(None):
            model = registry.activate(model_id)
        log.info("model.activated", model_id=model_id, actor=caller.key_id)
        return model

    def deactivate_model(self, caller: Caller) -> None:
        """No model active: services answer with their configured backend alone."""
        registry = self._models(caller)
        with self._graph_budget(None):
            registry.deactivate()
        log.info("model.deactivated", actor=caller.key_id)

    def ready(self) -> dict[str, object]:
        """Check readiness now: the graph answers (raises GraphUnavailable when not).

        A live graph call, bounded by the request deadline: the transports never call it from a
        request; :class:`serving.health.Readiness` calls it in the background and they serve
        its last result.
        """
        with self._graph_budget(None):
            version = self._reader.graph_version()
        return {"graph_version": version, "model_id": self.model_id}


def plain_text(result: AnswerResult) -> str:
    """The answer without citation markers, for terminals."""
    return strip_markers(result.text)


__all__ = ["BackendHolder", "Evidence", "QAService", "Retriever", "ServiceConfig", "plain_text", "require"]
