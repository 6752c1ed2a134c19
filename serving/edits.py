"""The knowledge managers' service: graph edits, history, revert and impact, for every transport.

gRPC (:mod:`serving.grpc.knowledge`), REST (:mod:`serving.http.routers.kg`) and the CLI call this
one class; they only translate. Authorization lives here: edits and reverts need role
``editor`` (readers and auditors get PermissionDenied), history and impact role ``auditor``.
The caller's key id and role are what the Change records as actor and role.
"""

from __future__ import annotations

from typing import Any

from kg.edits import ChangeRecord, Editor, EditResult, GraphEditor, TripleValues
from kgqa.errors import InvalidArgument
from serving.impact import ImpactAnalyzer, ImpactReport
from serving.service import require
from serving.types import Caller, Role
from serving.validation import json_object

MAX_TEXT_CHARS = 20_000
MAX_REASON_CHARS = 2_000


def _editor(caller: Caller) -> Editor:
    require(caller, Role.EDITOR)
    return Editor(caller.key_id, caller.role.name.lower())


def _reason(reason: str) -> str:
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidArgument(f"the reason is longer than {MAX_REASON_CHARS} characters; shorten it")
    return reason


def _version(expected_version: int) -> int:
    if expected_version < 1:
        raise InvalidArgument("expected_version is required: the version you read (1 or more)")
    return expected_version


class EditService:
    """Edits of the clause graph on behalf of an authenticated caller.

    Args:
        editor: the graph editor (:class:`kg.edits.GraphEditor`).
        impact: the impact analyzer.
    """

    def __init__(self, editor: GraphEditor, impact: ImpactAnalyzer) -> None:
        self._editor = editor
        self._impact = impact

    # -- clauses --------------------------------------------------------------------------------
    def edit_clause_text(
        self, caller: Caller, clause_id: str, text: str, expected_version: int, reason: str
    ) -> EditResult:
        who = _editor(caller)
        if len(text) > MAX_TEXT_CHARS:
            raise InvalidArgument(f"the clause text is longer than {MAX_TEXT_CHARS} characters")
        return self._editor.edit_clause_text(
            clause_id, text, expected_version=_version(expected_version), editor=who, reason=_reason(reason)
        )

    def retire_clause(self, caller: Caller, clause_id: str, expected_version: int, reason: str) -> EditResult:
        who = _editor(caller)
        return self._editor.retire_clause(
            clause_id, expected_version=_version(expected_version), editor=who, reason=_reason(reason)
        )

    def restore_clause(
        self, caller: Caller, clause_id: str, expected_version: int, reason: str
    ) -> EditResult:
        who = _editor(caller)
        return self._editor.restore_clause(
            clause_id, expected_version=_version(expected_version), editor=who, reason=_reason(reason)
        )

    # -- triples --------------------------------------------------------------------------------
    def add_triple(
        self,
        caller: Caller,
        clause_id: str,
        values: TripleValues,
        expected_version: int,
        reason: str,
        force: bool = False,
    ) -> EditResult:
        who = _editor(caller)
        return self._editor.add_triple(
            clause_id, values, expected_version=_version(expected_version), editor=who, reason=_reason(reason),
            force=force,
        )  # fmt: skip

    def correct_triple(
        self,
        caller: Caller,
        triple_id: str,
        values: TripleValues,
        expected_version: int,
        reason: str,
        force: bool = False,
    ) -> EditResult:
        who = _editor(caller)
        return self._editor.correct_triple(
            triple_id, values, expected_version=_version(expected_version), editor=who, reason=_reason(reason),
            force=force,
        )  # fmt: skip

    def confirm_triple(
        self, caller: Caller, triple_id: str, expected_version: int, reason: str
    ) -> EditResult:
        who = _editor(caller)
        return self._editor.confirm_triple(
            triple_id, expected_version=_version(expected_version), editor=who, reason=_reason(reason)
        )

    def reject_triple(self, caller: Caller, triple_id: str, expected_version: int, reason: str) -> EditResult:
        who = _editor(caller)
        return self._editor.reject_triple(
            triple_id, expected_version=_version(expected_version), editor=who, reason=_reason(reason)
        )

    # -- entities -------------------------------------------------------------------------------
    def rename_entity(
        self, caller: Caller, entity_id: str, name: str, expected_version: int, reason: str
    ) -> EditResult:
        who = _editor(caller)
        return self._editor.rename_entity(
            entity_id, name, expected_version=_version(expected_version), editor=who, reason=_reason(reason)
        )

    def merge_entities(
        self,
        caller: Caller,
        source_id: str,
        target_id: str,
        expected_version: int,
        expected_source_version: int,
        reason: str,
    ) -> EditResult:
        who = _editor(caller)
        return self._editor.merge_entities(
            source_id, target_id, expected_version=_version(expected_version),
            expected_source_version=_version(expected_source_version), editor=who, reason=_reason(reason),
        )  # fmt: skip

    # -- log ------------------------------------------------------------------------------------
    def revert(self, caller: Caller, seq: int, reason: str) -> EditResult:
        who = _editor(caller)
        if seq < 1:
            raise InvalidArgument("seq is the number of the Change to revert (1 or more)")
        return self._editor.revert(seq, editor=who, reason=_reason(reason))

    def history(self, caller: Caller, target_id: str) -> list[ChangeRecord]:
        require(caller, Role.AUDITOR)
        if not target_id:
            raise InvalidArgument("give a clause, triple, entity or document id")
        return self._editor.history(target_id)

    def current_version(self, caller: Caller, target_id: str) -> tuple[str, int]:
        """``(kind, version)``: what an editor passes back as ``expected_version``."""
        require(caller, Role.READER)
        return self._editor.current_version(target_id)

    def impact(self, caller: Caller, target_id: str) -> ImpactReport:
        require(caller, Role.AUDITOR)
        return self._impact.impact(target_id)


def triple_values(
    subject: str, predicate: str, obj: str, qualifiers: dict[str, Any] | None = None
) -> TripleValues:
    """The values of a triple edit as the transports receive them."""
    return TripleValues(subject, predicate, obj, dict(qualifiers or {}))


def qualifiers_from_json(text: str, name: str) -> dict[str, Any]:
    """A triple's qualifiers sent as JSON text (gRPC ``qualifiers_json``, the CLI's ``--qualifiers``).

    Args:
        text: a JSON object, or empty for none.
        name: the field as the caller knows it, for the error message.

    Raises:
        InvalidArgument: ``text`` is not JSON, or not a JSON object.
    """
    return json_object(text, name) if text else {}


__all__ = ["EditService", "qualifiers_from_json", "triple_values"]
