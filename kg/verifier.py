"""The answer verifier: the one check every answer passes before it leaves the service.

Also the GRPO hallucination reward and the QA dataset filter, so it is pure and fast:
:meth:`Verifier.verify_against` does no I/O; :meth:`Verifier.verify` fetches the cited clauses
through an :class:`EvidenceSource` (``kg.evidence.GraphEvidence``) in one query first.

Example::

    verifier = Verifier(GraphEvidence(driver))
    result = verifier.verify("进度款应在十四日内审核完毕[[YNJS-GL/第十二条]]。")
    if not result.verified:
        print([(a.kind, a.normalized, a.reason) for a in result.unsupported])

The implementation lives in :mod:`kg.verification`; this module is the stable import path.
"""

from kg.verification import (
    DEFAULT_PARTIES,
    REFUSAL_TEXT,
    Atom,
    CitationCheck,
    EvidenceClause,
    EvidenceSource,
    SentenceCheck,
    TripleFact,
    VerificationResult,
    Verifier,
    is_refusal,
)

__all__ = [
    "DEFAULT_PARTIES",
    "REFUSAL_TEXT",
    "Atom",
    "CitationCheck",
    "EvidenceClause",
    "EvidenceSource",
    "SentenceCheck",
    "TripleFact",
    "VerificationResult",
    "Verifier",
    "is_refusal",
]
