"""Checked edits: the values an edited triple states must be in the text of its clause.

A knowledge manager who adds or corrects a triple states a fact "in" a clause (STATED_IN). When
the amount, rate, duration or party of that fact is not in the clause's text, the graph would
teach the model (and back the verifier with) a fact the manual does not state. Such an edit is
refused unless the editor confirms it (``force`` with a reason); it is then stored ``asserted``.

The comparison uses the verifier's own normalization (:func:`kg.normalize.extract_quantities`,
:func:`kg.verification.atoms.is_party_name`), so "in the text" means exactly what it means when an
answer is verified: ``十五日`` in the clause supports a triple object ``15日``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kg.normalize import QuantityKind, extract_quantities
from kg.verification.atoms import is_party_name

CHECKED_KINDS: frozenset[QuantityKind] = frozenset({"amount", "rate", "duration"})
"""The quantity kinds an edited triple must find in its clause (plus parties)."""


def unstated_values(
    subject: str,
    obj: str,
    qualifiers: Mapping[str, Any],
    clause_text: str,
    *,
    subject_type: str | None = None,
    object_type: str | None = None,
) -> list[str]:
    """The values of a triple that its clause's text does not state, as ``kind value`` strings.

    Args:
        subject: the triple's subject.
        obj: the triple's object (a normalized value such as ``15日``, or a name).
        qualifiers: its qualifiers; a string ``surface`` is checked like the object.
        clause_text: the text of the clause version the triple is STATED_IN.
        subject_type: the subject entity's type when known (``party`` makes it a party).
        object_type: the object entity's type when known.

    Returns:
        One entry per unstated value (``duration 15日``, ``party 监理单位``), in triple order; empty
        when every checked value is in the text.
    """
    stated = {q.normalized for q in extract_quantities(clause_text, set(CHECKED_KINDS))}
    out: list[str] = []
    surface = qualifiers.get("surface")
    sources = [subject, obj] + ([surface] if isinstance(surface, str) else [])
    for source in sources:
        for q in extract_quantities(source, set(CHECKED_KINDS)):
            entry = f"{q.kind} {q.normalized}"
            if q.normalized not in stated and entry not in out:
                out.append(entry)
    for name, kind in ((subject, subject_type), (obj, object_type)):
        party = kind == "party" or (kind is None and is_party_name(name))
        if party and name not in clause_text and f"party {name}" not in out:
            out.append(f"party {name}")
    return out


__all__ = ["CHECKED_KINDS", "unstated_values"]
