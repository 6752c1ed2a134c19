"""Values the answer verifier reads (evidence) and returns (checks), shared with its callers.

The evidence types mirror what the graph stores for one clause *version*: the writer keeps every
version, so an audit trace can show the exact text that was cited, and the verifier can tell a
citation of a superseded or retired clause from one of an active clause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

AtomKind = Literal[
    "amount", "rate", "duration", "multiple", "date", "article", "party", "obligation", "citation", "sentence"
]


@dataclass
class TripleFact:
    """A fact stated in a clause version, as stored on its ``Triple`` node.

    ``object`` holds the normalized value where the extractor found one (``14日``, ``3%``,
    ``500000元``). ``subject_type`` / ``object_type`` are the types of the linked entities
    (``party``, ``concept``, ``document``) when the graph knows them; the verifier uses them to
    grow its party lexicon with the parties the evidence itself names. ``asserted`` marks a fact an
    editor stated although the clause text does not (a forced checked edit, :mod:`kg.edits`): the
    verifier accepts it as evidence but reports every atom that only it supports.
    """

    subject: str
    predicate: str
    object: str
    qualifiers: dict[str, Any] = field(default_factory=dict)
    subject_type: str | None = None
    object_type: str | None = None
    asserted: bool = False


@dataclass
class EvidenceClause:
    """One version of a clause with what an answer citing it may rely on.

    Attributes:
        clause_id: stable id, ``doc_id/number`` (``CAS-14-收入/第五条``).
        version: the clause version (1, 2, ...); an answer cites one version.
        status: ``active``, ``superseded`` or ``retired``; only active clauses verify.
        doc_id: the document id.
        doc_title: the document title (article and party mentions may refer to it).
        doc_version: the document version this clause version was written in.
        number: the clause number as written (``第五条``).
        text: the clause text.
        section_path: ``["第一章 总则", ...]`` from the document down to the clause.
        page_start: first page of the clause.
        page_end: last page of the clause.
        triples: the facts extracted from this version.
        tables: the tables of the clause's section, rendered by :func:`kg.tables.render_table`;
            an answer about a table row cites a clause of that section.
    """

    clause_id: str
    version: int
    status: str
    doc_id: str
    doc_title: str
    doc_version: int
    number: str
    text: str
    section_path: list[str] = field(default_factory=list)
    page_start: int = 1
    page_end: int = 1
    triples: list[TripleFact] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status == "active"


class EvidenceSource(Protocol):
    """Where the verifier gets the clauses an answer cites (the graph, or a prepared batch)."""

    def fetch(self, clause_ids: Sequence[str]) -> dict[str, EvidenceClause]:
        """The latest version of each id (the active one, else the newest superseded/retired one).

        Ids that are not in the graph are absent from the result.
        """
        ...


@dataclass
class Atom:
    """A checkable piece of an answer that its citations do not support.

    Attributes:
        kind: ``amount``, ``rate``, ``duration``, ``multiple``, ``date``, ``article``, ``party``,
            ``obligation``, ``citation`` or ``sentence``.
        text: the atom as the answer writes it (a citation atom: the marker, or the malformed text).
        normalized: the canonical form that was compared (``500000元``, ``3%``, ``第5条``, the
            modality class ``应当``/``不得``/``可以``, a clause id, or the sentence itself).
        sentence: the marker-free answer sentence the atom was found in.
        reason: why it is unsupported, in words a reviewer can act on.
    """

    kind: AtomKind
    text: str
    normalized: str
    sentence: str
    reason: str = ""


@dataclass
class CitationCheck:
    """The verdict on one cited clause id (repeated markers of one id are one citation).

    ``quote`` is the span of the clause text that best matches the sentences citing it
    (``clause.text[quote_start:quote_end]``), stored on the audit trail's ``CITES`` edge.
    ``support_score`` is the best coverage (0..1) of a citing sentence by this clause alone.
    """

    clause_id: str
    version: int | None
    resolved: bool
    active: bool
    quote: str
    quote_start: int
    quote_end: int
    support_score: float
    verified: bool
    allowed: bool = True
    asserted: bool = False
    """Some atom of the answer is supported only by an editor-asserted triple of this clause."""


@dataclass
class SentenceCheck:
    """One content sentence of the answer, the clause ids it cites and how well they cover it."""

    text: str
    clause_ids: list[str]
    supported: bool
    support_score: float


@dataclass
class VerificationResult:
    """Everything the verifier found; ``verified`` is the one bit that gates an answer.

    ``refusal`` marks the fixed "not found in the manuals" answer: a valid answer that is not
    verified (there is nothing to verify), which callers treat differently from a failure.
    """

    verified: bool
    citations: list[CitationCheck] = field(default_factory=list)
    sentences: list[SentenceCheck] = field(default_factory=list)
    unsupported: list[Atom] = field(default_factory=list)
    malformed_markers: list[str] = field(default_factory=list)
    refusal: bool = False
    asserted: list[Atom] = field(default_factory=list)
    """Atoms supported only by editor-asserted triples (not by any clause text): verified, but
    shown to the reader as the editor's word."""
