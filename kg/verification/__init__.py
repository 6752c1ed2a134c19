"""The answer verifier, split by job: types, sentences, atoms, support, and the verifier itself.

Import from :mod:`kg.verifier` (the stable facade); this package is its implementation.
"""

from kg.verification.atoms import DEFAULT_PARTIES
from kg.verification.types import (
    Atom,
    CitationCheck,
    EvidenceClause,
    EvidenceSource,
    SentenceCheck,
    TripleFact,
    VerificationResult,
)
from kg.verification.verifier import REFUSAL_TEXT, Verifier, is_refusal

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
