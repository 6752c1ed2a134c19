"""The knowledge managers' API over real sockets (gRPC KnowledgeService, REST /v1/kg) on a real
Neo4j holding a real corpus law, with the real QAService answering beside it.

Covers: every edit route refuses reader and auditor keys; a stale edit is ABORTED / 409 with the
current version; history and revert; checked triples (refused, then forced and asserted); impact;
and serving following an edit: 三十日 -> 十五日 in 招标投标法 第四十六条, then Ask says 十五日 and
cites the new version, and a model that still says 三十日 is replaced under ``strict``.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import grpc
import httpx
import pytest
from serving_data import AUDITOR_KEY, READER_KEY

pytestmark = pytest.mark.neo4j

EDITOR_KEY = "editor-test-key-0123456789"
ADMIN_KEY = "admin-test-key-0123456789"
LAW = "laws/招标投标法(2017-12-27).md"
ARTICLE = "第四十六条"
QUESTION = "招标人和中标人应当自中标通知书发出之日起多少日内订立书面合同？"
OLD_TEXT = (
    "第四十六条 招标人和中标人应当自中标通知书发出之日起三十日内，按照招标文件和中标人的投标文件订立书面合同。"
    "招标人和中标人不得再行订立背离合同实质性内容的其他协议。"
)


def _wipe(driver) -> None:
    """This module's graph starts and ends empty (the session's Neo4j belongs to this test run)."""
    with driver.session() as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()


@pytest.fixture(scope="module")
def settings(neo4j_server, tmp_path_factory):
    from kgqa.settings import Settings
    from serving.retrieval.config import RetrievalConfig

    return Settings(
        neo4j_uri=neo4j_server.bolt_uri,
        home=tmp_path_factory.mktemp("kg-edits-home"),
        retrieval=RetrievalConfig(stale_check_s=0.5),
        evidence_refresh_s=0.5,
    )


@pytest.fixture(scope="module")
def law(settings, neo4j_driver, corpus_dir):
    from kgqa.wiring import build_ingest_service

    _wipe(neo4j_driver)
    report = build_ingest_service(settings, neo4j_driver).ingest([corpus_dir / LAW])
    assert report.ok, report.failed
    yield f"{report.ingested[0].doc_id}/{ARTICLE}"
    _wipe(neo4j_driver)


class StaleModel:
    """A model trained before the edit: it still states 三十日 for the clause it was taught.

    It writes what the pre-edit adapter wrote (the old clause, cited); the service's real verifier
    has to catch it against the edited graph.
    """

    model_id = "stale-adapter"

    def __init__(self, clause_id: str) -> None:
        self.text = f"招标人和中标人应当自中标通知书发出之日起三十日内订立书面合同[[{clause_id}]]。"

    def generate(self, question, contexts, *, deadline=None):
        from serving.types import Generation

        return Generation(self.text, self.model_id)

    def stream(self, question, contexts, *, deadline=None):
        yield self.text


@pytest.fixture(scope="module")
def servers(law, settings, neo4j_driver):
    from kgqa.wiring import build_edit_service, build_qa_service
    from serving.auth import KeyRing
    from serving.server import start_servers
    from serving.types import Role

    keyring = KeyRing(
        [
            (READER_KEY, Role.READER),
            (AUDITOR_KEY, Role.AUDITOR),
            (EDITOR_KEY, Role.EDITOR),
            (ADMIN_KEY, Role.ADMIN),
        ]
    )
    service = build_qa_service(settings, neo4j_driver)
    running = start_servers(
        service,
        keyring,
        host="127.0.0.1",
        grpc_port=0,
        http_port=0,
        grace=1.0,
        health_interval_s=0.5,
        edits=build_edit_service(settings, neo4j_driver),
    )
    yield running
    running.stop(grace=1.0)
    service.close()


@pytest.fixture(scope="module")
def client(servers):
    with httpx.Client(base_url=f"http://127.0.0.1:{servers.http_port}", timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def stub(servers):
    from serving.grpc import knowledge_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{servers.grpc_port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        yield knowledge_pb2_grpc.KnowledgeServiceStub(channel)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _md(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


def _p(target: str) -> str:
    return quote(target, safe="/")


def _version(client, target: str) -> int:
    response = client.get(f"/v1/kg/version/{_p(target)}", headers=_auth(READER_KEY))
    assert response.status_code == 200, response.text
    return response.json()["version"]


def _graph_version(client, law) -> int:
    response = client.get(f"/v1/kg/impact/{_p(law)}", headers=_auth(AUDITOR_KEY))
    return response.json()["graph_version"]


def _ask(client) -> dict:
    response = client.post("/v1/ask", json={"question": QUESTION}, headers=_auth(READER_KEY))
    assert response.status_code == 200, response.text
    return response.json()


def test_every_edit_route_refuses_readers_and_auditors(client, stub, law):
    from serving.grpc import knowledge_pb2 as pb

    before = _graph_version(client, law)
    triple = {"subject": "合同", "predicate": "期限", "object": "30日", "qualifiers": {}}
    edit = {"expected_version": 1, "reason": "r"}
    routes = [
        ("put", f"/v1/kg/clauses/{_p(law)}/text", {**edit, "text": "x"}),
        ("post", f"/v1/kg/clauses/{_p(law)}/retire", edit),
        ("post", f"/v1/kg/clauses/{_p(law)}/restore", edit),
        ("post", f"/v1/kg/clauses/{_p(law)}/triples", {**edit, **triple}),
        ("put", "/v1/kg/triples/abc", {**edit, **triple}),
        ("post", "/v1/kg/triples/abc/confirm", edit),
        ("post", "/v1/kg/triples/abc/reject", edit),
        ("post", f"/v1/kg/entities/{_p('party:招标人')}/rename", {**edit, "name": "n"}),
        (
            "post",
            "/v1/kg/entities/merge",
            {**edit, "source_id": "a", "target_id": "b", "expected_source_version": 1},
        ),
        ("post", "/v1/kg/changes/1/revert", {"reason": "r"}),
    ]
    for key in (READER_KEY, AUDITOR_KEY):
        for method, path, body in routes:
            response = client.request(method, path, json=body, headers=_auth(key))
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["error"]["code"] == "PERMISSION_DENIED"
    content = pb.TripleContent(subject="合同", predicate="期限", object="30日")
    calls = [
        (stub.EditClauseText, pb.EditClauseTextRequest(clause_id=law, text="x", expected_version=1, reason="r")),
        (stub.RetireClause, pb.ClauseStatusRequest(clause_id=law, expected_version=1, reason="r")),
        (stub.RestoreClause, pb.ClauseStatusRequest(clause_id=law, expected_version=1, reason="r")),
        (stub.AddTriple, pb.AddTripleRequest(clause_id=law, triple=content, expected_version=1, reason="r")),
        (stub.CorrectTriple, pb.CorrectTripleRequest(triple_id="abc", triple=content, expected_version=1, reason="r")),
        (stub.ConfirmTriple, pb.TripleRequest(triple_id="abc", expected_version=1, reason="r")),
        (stub.RejectTriple, pb.TripleRequest(triple_id="abc", expected_version=1, reason="r")),
        (stub.RenameEntity, pb.RenameEntityRequest(entity_id="party:招标人", name="n", expected_version=1, reason="r")),
        (stub.MergeEntities, pb.MergeEntitiesRequest(source_id="a", target_id="b", expected_version=1,
                                                     expected_source_version=1, reason="r")),
        (stub.Revert, pb.RevertRequest(seq=1, reason="r")),
    ]  # fmt: skip
    for key in (READER_KEY, AUDITOR_KEY):
        for method, request in calls:
            with pytest.raises(grpc.RpcError) as info:
                method(request, metadata=_md(key), timeout=30)
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED, method
    # history and impact are for auditors, not readers
    assert client.get(f"/v1/kg/history/{_p(law)}", headers=_auth(READER_KEY)).status_code == 403
    with pytest.raises(grpc.RpcError) as info:
        stub.Impact(pb.ImpactRequest(target_id=law), metadata=_md(READER_KEY), timeout=30)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _graph_version(client, law) == before  # nothing was written


def test_edit_then_stale_edit_is_aborted_and_409_with_the_current_version(client, stub, law):
    """Edits 三十日 -> 十五日 (the rest of the module reads the edited clause)."""
    from serving.grpc import knowledge_pb2 as pb

    asked = _ask(client)  # before the edit: answered from version 1, for the impact test
    assert any(c["clause_id"] == law and c["clause_version"] == 1 for c in asked["citations"])
    version = _version(client, law)
    assert version == 1
    new_text = OLD_TEXT.replace("三十日", "十五日")
    done = stub.EditClauseText(
        pb.EditClauseTextRequest(
            clause_id=law, text=new_text, expected_version=1, reason="法律修订：缩短为十五日"
        ),
        metadata=_md(EDITOR_KEY),
        timeout=60,
    )
    assert (done.op, done.version, done.target_id) == ("clause.edit", 2, law) and done.seq > 0
    with pytest.raises(grpc.RpcError) as info:
        stub.EditClauseText(
            pb.EditClauseTextRequest(
                clause_id=law, text=OLD_TEXT, expected_version=1, reason="another editor"
            ),
            metadata=_md(EDITOR_KEY),
            timeout=60,
        )
    assert info.value.code() == grpc.StatusCode.ABORTED and "current_version=2" in info.value.details()
    stale = client.put(
        f"/v1/kg/clauses/{_p(law)}/text",
        json={"text": OLD_TEXT, "expected_version": 1, "reason": "another editor"},
        headers=_auth(EDITOR_KEY),
    )
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "ABORTED"
    assert "current_version=2" in stale.json()["error"]["message"]
    history = client.get(f"/v1/kg/history/{_p(law)}", headers=_auth(AUDITOR_KEY)).json()["changes"]
    last = history[-1]
    assert (last["seq"], last["op"], last["role"], last["reason"]) == (
        done.seq,
        "clause.edit",
        "editor",
        "法律修订：缩短为十五日",
    )
    assert last["actor"].startswith("key-") and EDITOR_KEY not in json.dumps(history)
    assert "三十日" in last["before"]["text"] and "十五日" in last["after"]["text"]


def test_ask_follows_the_edit_and_cites_the_new_version(client, law):
    deadline = time.monotonic() + 30
    while True:
        answer = _ask(client)
        cited = {c["clause_id"]: c for c in answer["citations"]}
        if law in cited and cited[law]["clause_version"] == 2:
            break
        assert time.monotonic() < deadline, f"Ask still cites the old version: {answer}"
        time.sleep(0.5)
    assert answer["status"] == "VERIFIED"
    assert "十五日" in answer["text"] and "三十日" not in answer["text"]
    assert "十五日" in cited[law]["quote"]


def test_a_model_that_still_says_the_old_value_is_replaced_under_strict(settings, neo4j_driver, law, servers):
    """The active model learned 三十日; the real verifier catches it against the edited graph."""
    from kgqa.wiring import build_qa_service
    from serving.types import Caller, Role

    service = build_qa_service(settings, neo4j_driver, backend=StaleModel(law))
    try:
        assert service.config.policy == "strict"
        result = service.ask(QUESTION, 0, Caller("key-test", Role.READER))
    finally:
        service.close()
    assert result.status.value == "VERIFIED"
    assert "extractive" in result.model_id
    assert "十五日" in result.text and "三十日" not in result.text
    cited = {c.clause_id: c for c in result.citations}
    assert cited[law].clause_version == 2 and "十五日" in cited[law].quote


def test_checked_triples_over_rest_and_grpc(client, stub, law):
    from serving.grpc import knowledge_pb2 as pb

    version = _version(client, law)
    body = {"subject": "书面合同", "predicate": "期限", "object": "20日", "qualifiers": {"surface": "二十日内"},
            "expected_version": version, "reason": "补充"}  # fmt: skip
    refused = client.post(f"/v1/kg/clauses/{_p(law)}/triples", json=body, headers=_auth(EDITOR_KEY))
    assert refused.status_code == 422 and "20日" in refused.json()["error"]["message"]
    forced = client.post(
        f"/v1/kg/clauses/{_p(law)}/triples", json={**body, "force": True, "reason": "依据内部通知"},
        headers=_auth(EDITOR_KEY),
    )  # fmt: skip
    assert forced.status_code == 200 and forced.json()["asserted"] is True
    triple_id = forced.json()["target_id"]
    fine = stub.CorrectTriple(
        pb.CorrectTripleRequest(
            triple_id=triple_id,
            triple=pb.TripleContent(subject="书面合同", predicate="期限", object="15日"),
            expected_version=1,
            reason="与条文一致",
        ),
        metadata=_md(EDITOR_KEY),
        timeout=30,
    )
    assert fine.version == 2 and not fine.asserted
    reverted = stub.Revert(pb.RevertRequest(seq=fine.seq, reason="撤销"), metadata=_md(ADMIN_KEY), timeout=30)
    assert reverted.op == "triple.revert" and reverted.asserted and reverted.version == 3
    ops = [
        c.op for c in stub.History(pb.HistoryRequest(target_id=triple_id), metadata=_md(AUDITOR_KEY)).changes
    ]
    assert ops == ["triple.add", "triple.correct", "triple.revert"]

    # a correction against a version the triple has moved past: 409 with the current version
    stale = client.put(
        f"/v1/kg/triples/{triple_id}",
        json={"subject": "书面合同", "predicate": "期限", "object": "15日", "expected_version": 1,
              "reason": "按旧版本修改"},
        headers=_auth(EDITOR_KEY),
    )  # fmt: skip
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "ABORTED"
    assert "3" in stale.json()["error"]["message"]
    # a correction to a value the clause does not state, unforced: the verifier's objection
    with pytest.raises(grpc.RpcError) as refused_grpc:
        stub.CorrectTriple(
            pb.CorrectTripleRequest(
                triple_id=triple_id,
                triple=pb.TripleContent(subject="书面合同", predicate="期限", object="45日"),
                expected_version=3,
                reason="改为四十五日",
            ),
            metadata=_md(EDITOR_KEY),
            timeout=30,
        )
    assert refused_grpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "45日" in refused_grpc.value.details()
    after = stub.History(pb.HistoryRequest(target_id=triple_id), metadata=_md(AUDITOR_KEY)).changes
    assert len(after) == 3  # neither refused correction changed anything


def test_impact_lists_old_answers_and_the_index_catching_up(client, stub, law):
    from serving.grpc import knowledge_pb2 as pb

    deadline = time.monotonic() + 30
    while True:
        report = stub.Impact(pb.ImpactRequest(target_id=law), metadata=_md(AUDITOR_KEY), timeout=30)
        if report.index_caught_up and report.answers_citing_old:
            break
        assert time.monotonic() < deadline, report
        _ask(client)  # the index checks the graph version as questions come in (stale_check_s)
        time.sleep(0.5)
    assert report.clause_versions[law] == 2 and report.last_change > 0
    assert all(a.clause_version == 1 for a in report.answers_citing_old)
    assert report.index_graph_version >= report.last_change
    rest = client.get(f"/v1/kg/impact/{_p(law)}", headers=_auth(AUDITOR_KEY)).json()
    assert rest["clause_versions"] == {law: 2} and rest["answers_citing_old"]
