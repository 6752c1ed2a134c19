"""The KnowledgeService servicer: proto request -> one EditService call -> proto response.

No logic here (STYLE habit 7): authentication and the error -> status mapping are the
:class:`serving.grpc.interceptors.ServiceInterceptor`'s, authorization and validation the
:class:`serving.edits.EditService`'s.
"""

from __future__ import annotations

import json

import grpc

from kg.edits import ChangeRecord, EditResult
from serving.edits import EditService, qualifiers_from_json, triple_values
from serving.grpc import knowledge_pb2 as pb
from serving.grpc import knowledge_pb2_grpc
from serving.grpc.interceptors import current_caller
from serving.impact import ImpactReport


def _triple(t: pb.TripleContent):
    return triple_values(
        t.subject, t.predicate, t.object, qualifiers_from_json(t.qualifiers_json, "qualifiers_json")
    )


def result_to_proto(r: EditResult) -> pb.EditResult:
    return pb.EditResult(
        seq=r.seq,
        op=r.op,
        target_id=r.target_id,
        version=r.version,
        asserted=r.asserted,
        triples=r.triples,
        dropped_triples=list(r.dropped_triples),
    )


def _dump(payload: dict | None) -> str:
    return "" if payload is None else json.dumps(payload, ensure_ascii=False)


def change_to_proto(c: ChangeRecord) -> pb.ChangeEntry:
    return pb.ChangeEntry(
        seq=c.seq, op=c.op, target_id=c.target_id, actor=c.actor, role=c.role, at=c.at, reason=c.reason,
        before_json=_dump(c.before), after_json=_dump(c.after),
    )  # fmt: skip


def impact_to_proto(r: ImpactReport) -> pb.ImpactReport:
    return pb.ImpactReport(
        target_id=r.target_id,
        clause_ids=r.clause_ids,
        clause_versions=r.clause_versions,
        last_change=r.last_change or 0,
        graph_version=r.graph_version,
        dataset_dir=r.dataset_dir,
        dataset_found=r.dataset_found,
        pairs=[
            pb.ImpactPair(pair_id=p.pair_id, question=p.question, split=p.split or "", clause_id=p.clause_id,
                          clause_version=p.clause_version, stale=p.stale)
            for p in r.pairs
        ],
        stale_models=[
            pb.ImpactModel(model_id=m.model_id, kind=m.kind, graph_version=m.graph_version, active=m.active)
            for m in r.stale_models
        ],
        answers_citing_old=[
            pb.ImpactAnswer(answer_id=a.answer_id, question=a.question, status=a.status, created_at=a.created_at,
                            clause_id=a.clause_id, clause_version=a.clause_version, model_id=a.model_id)
            for a in r.answers_citing_old
        ],
        index_graph_version=r.index_graph_version or 0,
        index_caught_up=r.index_caught_up,
    )  # fmt: skip


class KnowledgeServicer(knowledge_pb2_grpc.KnowledgeServiceServicer):
    """gRPC face of :class:`EditService` (one instance shared with the REST router)."""

    def __init__(self, edits: EditService) -> None:
        self._edits = edits

    def EditClauseText(
        self, request: pb.EditClauseTextRequest, context: grpc.ServicerContext
    ) -> pb.EditResult:  # noqa: N802
        return result_to_proto(
            self._edits.edit_clause_text(
                current_caller(), request.clause_id, request.text, request.expected_version, request.reason
            )
        )

    def RetireClause(self, request: pb.ClauseStatusRequest, context: grpc.ServicerContext) -> pb.EditResult:  # noqa: N802
        return result_to_proto(
            self._edits.retire_clause(
                current_caller(), request.clause_id, request.expected_version, request.reason
            )
        )

    def RestoreClause(self, request: pb.ClauseStatusRequest, context: grpc.ServicerContext) -> pb.EditResult:  # noqa: N802
        return result_to_proto(
            self._edits.restore_clause(
                current_caller(), request.clause_id, request.expected_version, request.reason
            )
        )

    def AddTriple(self, request: pb.AddTripleRequest, context: grpc.ServicerContext) -> pb.EditResult:  # noqa: N802
        return result_to_proto(
            self._edits.add_triple(
                current_caller(), request.clause_id, _triple(request.triple), request.expected_version,
                request.reason, request.force,
            )
        )  # fmt: skip

    def CorrectTriple(self, request: pb.CorrectTripleRequest, context: grpc.ServicerContext) -> pb.EditResult:  # noqa: N802
        return result_to_proto(
            self._edits.correct_triple(
                current_caller(), request.triple_id, _triple(request.triple), request.expected_version,
                request.reason, request.force,
            )
        )  # fmt: skip

    def ConfirmTriple(self, request: pb.TripleRequest, context: grpc.ServicerContext) -> pb.EditResult:  # noqa: N802
        return result_to_proto(
            self._edits.confirm_triple(
                current_caller(), request.triple_id, request.expected_version, request.reason
            )
        )

    def RejectTriple(self, request: pb.TripleRequest, context: grpc.ServicerContext) -> pb.EditResult:  # noqa: N802
        return result_to_proto(
            self._edits.reject_triple(
                current_caller(), request.triple_id, request.expected_version, request.reason
            )
        )

    def RenameEntity(self, request: pb.RenameEntityRequest, context: grpc.ServicerContext) -> pb.EditResult:  # noqa: N802
        return result_to_proto(
            self._edits.rename_entity(
                current_caller(), request.entity_id, request.name, request.expected_version, request.reason
            )
        )

    def MergeEntities(self, request: pb.MergeEntitiesRequest, context: grpc.ServicerContext) -> pb.EditResult:  # noqa: N802
        return result_to_proto(
            self._edits.merge_entities(
                current_caller(), request.source_id, request.target_id, request.expected_version,
                request.expected_source_version, request.reason,
            )
        )  # fmt: skip

    def Revert(self, request: pb.RevertRequest, context: grpc.ServicerContext) -> pb.EditResult:  # noqa: N802
        return result_to_proto(self._edits.revert(current_caller(), request.seq, request.reason))

    def History(self, request: pb.HistoryRequest, context: grpc.ServicerContext) -> pb.HistoryResponse:  # noqa: N802
        changes = self._edits.history(current_caller(), request.target_id)
        return pb.HistoryResponse(changes=[change_to_proto(c) for c in changes])

    def GetVersion(self, request: pb.GetVersionRequest, context: grpc.ServicerContext) -> pb.VersionInfo:  # noqa: N802
        kind, version = self._edits.current_version(current_caller(), request.target_id)
        return pb.VersionInfo(kind=kind, version=version)

    def Impact(self, request: pb.ImpactRequest, context: grpc.ServicerContext) -> pb.ImpactReport:  # noqa: N802
        return impact_to_proto(self._edits.impact(current_caller(), request.target_id))


__all__ = ["KnowledgeServicer", "change_to_proto", "impact_to_proto", "result_to_proto"]
