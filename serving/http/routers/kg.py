"""``/v1/kg/...``: the knowledge managers' edits, history, revert and impact over REST.

Thin: each route turns its JSON body into one :class:`serving.edits.EditService` call (the same
instance the gRPC ``KnowledgeService`` uses); errors rise to the handlers of
``serving/http/errors.py`` (a stale edit is 409, a value its clause does not state 422, a reader's
or auditor's key on an edit route 403). Field names mirror ``protos/kgqa/v1/knowledge.proto``.
Ids contain ``/`` and CJK, so they use the ``:path`` converter (suffix routes match by backtracking).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from kg.edits import EditResult
from serving.edits import EditService, triple_values
from serving.http.deps import CallerDep
from serving.http.schemas import ErrorBody

router = APIRouter(prefix="/v1/kg", tags=["knowledge"])

_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422)}


def get_edits(request: Request) -> EditService:
    return request.app.state.edits


EditsDep = Annotated[EditService, Depends(get_edits)]


class _Edit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expected_version: StrictInt = Field(
        description="The version you read: a clause's version, a triple's or entity's revision."
    )
    reason: StrictStr = Field(description="Why the graph is changed (recorded on the Change).")


class ClauseTextBody(_Edit):
    text: StrictStr = Field(description="The clause's new text.")


class TripleBody(_Edit):
    subject: StrictStr
    predicate: StrictStr
    object: StrictStr
    qualifiers: dict[str, Any] = Field(default_factory=dict)
    force: StrictBool = Field(
        default=False, description="Store values its clause does not state, as the editor's assertion."
    )


class RenameBody(_Edit):
    name: StrictStr


class MergeBody(_Edit):
    source_id: StrictStr
    target_id: StrictStr
    expected_source_version: StrictInt = Field(description="The source entity's revision as read.")


class RevertBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: StrictStr


class EditResultOut(BaseModel):
    seq: int
    op: str
    target_id: str
    version: int
    asserted: bool
    triples: int
    dropped_triples: list[str]

    @classmethod
    def of(cls, r: EditResult) -> EditResultOut:
        return cls(**asdict(r))


class ChangeOut(BaseModel):
    seq: int
    op: str
    target_id: str
    actor: str
    role: str
    at: str
    reason: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class HistoryOut(BaseModel):
    changes: list[ChangeOut]


class VersionOut(BaseModel):
    kind: str
    version: int


def _route(path: str, summary: str, method: str = "post", model: type = EditResultOut):
    return getattr(router, method)(path, response_model=model, summary=summary, responses=_ERRORS)


@_route("/clauses/{clause_id:path}/text", "New text for a clause: a new version (role editor)", "put")
def edit_clause_text(
    clause_id: str, body: ClauseTextBody, edits: EditsDep, caller: CallerDep
) -> EditResultOut:
    return EditResultOut.of(
        edits.edit_clause_text(caller, clause_id, body.text, body.expected_version, body.reason)
    )


@_route("/clauses/{clause_id:path}/retire", "Retire a clause (role editor)")
def retire_clause(clause_id: str, body: _Edit, edits: EditsDep, caller: CallerDep) -> EditResultOut:
    return EditResultOut.of(edits.retire_clause(caller, clause_id, body.expected_version, body.reason))


@_route("/clauses/{clause_id:path}/restore", "Restore a retired clause (role editor)")
def restore_clause(clause_id: str, body: _Edit, edits: EditsDep, caller: CallerDep) -> EditResultOut:
    return EditResultOut.of(edits.restore_clause(caller, clause_id, body.expected_version, body.reason))


@_route("/clauses/{clause_id:path}/triples", "State a new triple in a clause (role editor)")
def add_triple(clause_id: str, body: TripleBody, edits: EditsDep, caller: CallerDep) -> EditResultOut:
    values = triple_values(body.subject, body.predicate, body.object, body.qualifiers)
    return EditResultOut.of(
        edits.add_triple(caller, clause_id, values, body.expected_version, body.reason, body.force)
    )


@_route("/triples/{triple_id}/confirm", "Confirm a triple (role editor)")
def confirm_triple(triple_id: str, body: _Edit, edits: EditsDep, caller: CallerDep) -> EditResultOut:
    return EditResultOut.of(edits.confirm_triple(caller, triple_id, body.expected_version, body.reason))


@_route("/triples/{triple_id}/reject", "Reject a triple (role editor)")
def reject_triple(triple_id: str, body: _Edit, edits: EditsDep, caller: CallerDep) -> EditResultOut:
    return EditResultOut.of(edits.reject_triple(caller, triple_id, body.expected_version, body.reason))


@_route("/triples/{triple_id}", "Correct a triple (role editor)", "put")
def correct_triple(triple_id: str, body: TripleBody, edits: EditsDep, caller: CallerDep) -> EditResultOut:
    values = triple_values(body.subject, body.predicate, body.object, body.qualifiers)
    return EditResultOut.of(
        edits.correct_triple(caller, triple_id, values, body.expected_version, body.reason, body.force)
    )


@_route("/entities/merge", "Merge one entity into another (role editor)")
def merge_entities(body: MergeBody, edits: EditsDep, caller: CallerDep) -> EditResultOut:
    return EditResultOut.of(
        edits.merge_entities(
            caller, body.source_id, body.target_id, body.expected_version, body.expected_source_version,
            body.reason,
        )
    )  # fmt: skip


@_route("/entities/{entity_id:path}/rename", "Rename an entity; the old name stays an alias (role editor)")
def rename_entity(entity_id: str, body: RenameBody, edits: EditsDep, caller: CallerDep) -> EditResultOut:
    return EditResultOut.of(
        edits.rename_entity(caller, entity_id, body.name, body.expected_version, body.reason)
    )


@_route("/changes/{seq}/revert", "Undo one Change as a new Change (role editor)")
def revert(seq: int, body: RevertBody, edits: EditsDep, caller: CallerDep) -> EditResultOut:
    return EditResultOut.of(edits.revert(caller, seq, body.reason))


@_route("/history/{target_id:path}", "Every Change of an id, oldest first (role auditor)", "get", HistoryOut)
def history(target_id: str, edits: EditsDep, caller: CallerDep) -> HistoryOut:
    return HistoryOut(changes=[ChangeOut(**asdict(c)) for c in edits.history(caller, target_id)])


@_route("/version/{target_id:path}", "The current version to edit against (role reader)", "get", VersionOut)
def version(target_id: str, edits: EditsDep, caller: CallerDep) -> VersionOut:
    kind, current = edits.current_version(caller, target_id)
    return VersionOut(kind=kind, version=current)


@router.get(
    "/impact/{target_id:path}",
    summary="What an edit of an id touches: pairs, stale models, old answers, index (role auditor)",
    responses=_ERRORS,
)
def impact(target_id: str, edits: EditsDep, caller: CallerDep) -> dict[str, Any]:
    return asdict(edits.impact(caller, target_id))
