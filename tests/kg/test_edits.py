"""kg/edits.py against the real Neo4j over a really ingested manual: versions, stale edits, the
Change in the same transaction, checked triples, entities, history and revert."""

from __future__ import annotations

import json

import pytest

from kg.edits import Editor, TripleValues
from kg.evidence import GraphEvidence
from kg.session import GraphSession
from kgqa.errors import InvalidArgument, StaleEdit, UnsupportedValue

pytestmark = pytest.mark.neo4j

MANUAL = """# 测试付款管理办法

## 第一章 总则

第一条 为规范工程进度款支付管理，制定本办法。

第二条 建设单位应当自收到施工单位进度款支付申请之日起三十日内审核完毕。

第三条 单笔付款金额超过50万元的，应当经总经理审批。
"""
DOC = "测试付款管理办法"
EDITOR = Editor("key-editor0001", "editor")


@pytest.fixture(scope="module")
def ingest(neo4j_server, neo4j_driver, tmp_path_factory):
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service

    folder = tmp_path_factory.mktemp("manual")
    path = folder / f"{DOC}.md"
    path.write_text(MANUAL, encoding="utf-8")
    settings = Settings(neo4j_uri=neo4j_server.bolt_uri, home=folder / "home")
    service = build_ingest_service(settings, neo4j_driver)

    def run(text: str = MANUAL, **kwargs):
        path.write_text(text, encoding="utf-8")
        report = service.ingest([path], **kwargs)
        assert report.ok, report.failed
        return report.ingested[0].doc_id if not kwargs else report

    return run


@pytest.fixture
def graph(clean_graph, ingest):
    """A fresh graph holding the manual; returns its document id."""
    return ingest()


@pytest.fixture(scope="module")
def editor(neo4j_driver):
    from kgqa.settings import Settings
    from kgqa.wiring import build_graph_editor

    return build_graph_editor(Settings(), neo4j_driver)


def _cid(doc_id: str, number: str) -> str:
    return f"{doc_id}/{number}"


def _versions(driver, cid):
    rows = GraphSession(driver).read(
        "MATCH (c:Clause {clause_id: $cid}) OPTIONAL MATCH (c)-[:SUPERSEDES]->(o:Clause) "
        "RETURN c.version AS v, c.status AS s, c.text AS text, o.version AS supersedes ORDER BY v",
        cid=cid,
    )
    return [(r["v"], r["s"], r["supersedes"]) for r in rows], [r["text"] for r in rows]


def _triples(driver, cid, version):
    rows = GraphSession(driver).read(
        "MATCH (t:Triple)-[:STATED_IN]->(:Clause {clause_id: $cid, version: $v}) "
        "RETURN t.object AS object, t.status AS status, t.predicate AS predicate",
        cid=cid,
        v=version,
    )
    return [(r["predicate"], r["object"], r["status"]) for r in rows]


def test_clause_text_edit_is_a_new_version_with_reextracted_triples_and_its_change(
    graph, editor, neo4j_driver
):
    cid = _cid(graph, "第二条")
    assert ("期限", "30日", "active") in _triples(neo4j_driver, cid, 1)
    before = editor.graph_version()
    new_text = "第二条 建设单位应当自收到施工单位进度款支付申请之日起十五日内审核完毕。"
    result = editor.edit_clause_text(
        cid, new_text, expected_version=1, editor=EDITOR, reason="办法修订：审核期限缩短为十五日"
    )
    assert (result.op, result.version, result.seq) == ("clause.edit", 2, before + 1)
    assert result.triples > 0
    versions, texts = _versions(neo4j_driver, cid)
    assert versions == [(1, "superseded", None), (2, "active", 1)]
    assert "三十日" in texts[0] and texts[1] == new_text
    assert ("期限", "15日", "active") in _triples(neo4j_driver, cid, 2)
    assert all(status == "superseded" for _, _, status in _triples(neo4j_driver, cid, 1))
    # the Change: who, why, before and after, ON the new version
    (change,) = [c for c in editor.history(cid) if c.op == "clause.edit"]
    assert (change.seq, change.actor, change.role) == (result.seq, "key-editor0001", "editor")
    assert change.reason == "办法修订：审核期限缩短为十五日"
    assert (change.before["version"], change.after["version"]) == (1, 2)
    assert "三十日" in change.before["text"] and "十五日" in change.after["text"]
    on = GraphSession(neo4j_driver).read(
        "MATCH (:Change {seq: $seq})-[:ON]->(c:Clause) RETURN c.version AS v", seq=result.seq
    )
    assert [r["v"] for r in on] == [2]
    # the verifier now reads the new text
    evidence = GraphEvidence(neo4j_driver).fetch([cid])[cid]
    assert evidence.version == 2 and "十五日" in evidence.text


def test_a_stale_edit_is_refused_with_the_current_version(graph, editor, neo4j_driver):
    cid = _cid(graph, "第二条")
    editor.edit_clause_text(
        cid, "第二条 建设单位应当在二十日内审核完毕。", expected_version=1, editor=EDITOR, reason="a"
    )
    version = editor.graph_version()
    with pytest.raises(StaleEdit) as info:
        editor.edit_clause_text(
            cid, "第二条 建设单位应当在十日内审核完毕。", expected_version=1, editor=EDITOR, reason="b"
        )
    assert (
        info.value.current_version == 2
        and info.value.grpc_code == "ABORTED"
        and info.value.http_status == 409
    )
    assert "current_version=2" in str(info.value)
    assert editor.graph_version() == version  # nothing written, no Change
    with pytest.raises(InvalidArgument):
        editor.edit_clause_text(
            cid, "x", expected_version=2, editor=EDITOR, reason="  "
        )  # a reason is required


def test_the_change_is_written_in_the_same_transaction_as_the_edit(graph, editor, neo4j_driver, monkeypatch):
    """When appending the Change fails, the edit is rolled back with it."""
    import kg.edits

    cid = _cid(graph, "第二条")
    version = editor.graph_version()

    def broken(*args, **kwargs):
        raise RuntimeError("the change log is unavailable")

    monkeypatch.setattr(kg.edits, "append_changes", broken)
    with pytest.raises(RuntimeError):
        editor.edit_clause_text(
            cid, "第二条 建设单位应当在十日内审核完毕。", expected_version=1, editor=EDITOR, reason="r"
        )
    with pytest.raises(RuntimeError):
        editor.retire_clause(cid, expected_version=1, editor=EDITOR, reason="r")
    versions, _ = _versions(neo4j_driver, cid)
    assert versions == [(1, "active", None)]
    assert ("期限", "30日", "active") in _triples(neo4j_driver, cid, 1)
    assert editor.graph_version() == version


def test_retire_restore_and_revert(graph, editor, neo4j_driver):
    cid = _cid(graph, "第三条")
    retired = editor.retire_clause(cid, expected_version=1, editor=EDITOR, reason="废止")
    assert GraphEvidence(neo4j_driver).fetch([cid])[cid].status == "retired"
    assert all(s == "retired" for _, _, s in _triples(neo4j_driver, cid, 1))
    # a retired clause and an unknown id have no active version; the others do, in one read
    assert editor.active_versions([cid, _cid(graph, "第二条"), "nope/第九条"]) == {_cid(graph, "第二条"): 1}
    restored = editor.revert(retired.seq, editor=EDITOR, reason="误操作")
    assert restored.op == "clause.revert" and restored.seq == retired.seq + 1
    assert GraphEvidence(neo4j_driver).fetch([cid])[cid].status == "active"
    assert all(s == "active" for _, _, s in _triples(neo4j_driver, cid, 1))
    # NEXT chain whole again: 第二条 -> 第三条
    nxt = GraphSession(neo4j_driver).read(
        "MATCH (a:Clause {clause_id: $a, status: 'active'})-[:NEXT]->(b:Clause {status: 'active'}) "
        "RETURN b.clause_id AS b",
        a=_cid(graph, "第二条"),
    )
    assert [r["b"] for r in nxt] == [cid]
    # a text edit reverted is a third version with the first text
    cid2 = _cid(graph, "第二条")
    edit = editor.edit_clause_text(
        cid2, "第二条 建设单位应当在十五日内审核完毕。", expected_version=1, editor=EDITOR, reason="r"
    )
    with pytest.raises(InvalidArgument, match="already active"):
        editor.revert(retired.seq, editor=EDITOR, reason="again")  # reverted already
    back = editor.revert(edit.seq, editor=EDITOR, reason="撤销修订")
    versions, texts = _versions(neo4j_driver, cid2)
    assert back.version == 3 and versions[-1] == (3, "active", 2) and texts[2] == texts[0]
    assert [c.op for c in editor.history(cid2)][-2:] == ["clause.edit", "clause.revert"]
    assert editor.history(cid2)[-1].after["reverts"] == edit.seq
    assert editor.active_versions([cid, cid2]) == {cid: 1, cid2: 3}


def test_checked_triple_edits_refuse_values_the_clause_does_not_state(graph, editor, neo4j_driver):
    cid = _cid(graph, "第二条")
    wrong = TripleValues("进度款支付申请", "期限", "45日", {"surface": "四十五日内"})
    with pytest.raises(UnsupportedValue) as info:
        editor.add_triple(cid, wrong, expected_version=1, editor=EDITOR, reason="补充")
    assert "45日" in str(info.value) and info.value.grpc_code == "INVALID_ARGUMENT"
    # the same value written differently is in the text: accepted, not asserted
    fine = editor.add_triple(
        cid, TripleValues("审核", "期限", "三十日"), expected_version=1, editor=EDITOR, reason="补充"
    )
    assert not fine.asserted
    party = TripleValues("审核", "责任主体", "监理单位")
    with pytest.raises(UnsupportedValue, match="监理单位"):
        editor.add_triple(cid, party, expected_version=1, editor=EDITOR, reason="补充")
    forced = editor.add_triple(
        cid, wrong, expected_version=1, editor=EDITOR, reason="依据补充通知", force=True
    )
    assert forced.asserted
    facts = {t.object: t for t in GraphEvidence(neo4j_driver).fetch([cid])[cid].triples}
    assert facts["45日"].asserted and not facts["30日"].asserted


def test_correct_confirm_reject_and_revert_a_triple(graph, editor, neo4j_driver):
    cid = _cid(graph, "第二条")
    rows = GraphSession(neo4j_driver).read(
        "MATCH (t:Triple {predicate: '期限'})-[:STATED_IN]->(:Clause {clause_id: $cid}) RETURN t.triple_id AS id",
        cid=cid,
    )
    tid = rows[0]["id"]
    assert editor.current_version(tid) == ("triple", 1)
    confirmed = editor.confirm_triple(tid, expected_version=1, editor=EDITOR, reason="核对无误")
    assert confirmed.version == 2
    with pytest.raises(UnsupportedValue):
        editor.correct_triple(
            tid, TripleValues("审核", "期限", "20日"), expected_version=2, editor=EDITOR, reason="r"
        )
    with pytest.raises(StaleEdit):
        editor.reject_triple(tid, expected_version=1, editor=EDITOR, reason="r")
    corrected = editor.correct_triple(
        tid,
        TripleValues("进度款支付申请审核", "期限", "30日"),
        expected_version=2,
        editor=EDITOR,
        reason="主语更准确",
    )
    assert corrected.version == 3 and not corrected.asserted
    rejected = editor.reject_triple(tid, expected_version=3, editor=EDITOR, reason="重复")
    evidence = GraphEvidence(neo4j_driver).fetch([cid])[cid]
    assert tid not in {t.subject for t in evidence.triples}
    assert "进度款支付申请审核" not in {t.subject for t in evidence.triples}  # rejected: no longer evidence
    editor.revert(rejected.seq, editor=EDITOR, reason="撤销驳回")
    evidence = GraphEvidence(neo4j_driver).fetch([cid])[cid]
    assert "进度款支付申请审核" in {t.subject for t in evidence.triples}
    ops = [c.op for c in editor.history(tid)]
    assert ops == ["triple.confirm", "triple.correct", "triple.reject", "triple.revert"]
    on = GraphSession(neo4j_driver).read(
        "MATCH (:Change {seq: $seq})-[:ON]->(t:Triple) RETURN t.triple_id AS id", seq=rejected.seq
    )
    assert [r["id"] for r in on] == [tid]


def test_rename_and_merge_entities_keep_aliases_and_revert(graph, editor, neo4j_driver):
    session = GraphSession(neo4j_driver)

    def entity(eid):
        return session.read(
            "MATCH (e:Entity {entity_id: $eid}) RETURN e {.*} AS e, COUNT { (:Clause)-[:MENTIONS]->(e) } AS m",
            eid=eid,
        )[0]

    a, b = "party:建设单位", "party:总经理"
    assert entity(a)["m"] >= 1 and entity(b)["m"] >= 1
    renamed = editor.rename_entity(a, "业主单位", expected_version=1, editor=EDITOR, reason="统一称谓")
    assert entity(a)["e"]["name"] == "业主单位" and "建设单位" in entity(a)["e"]["aliases"]
    mentions_b = entity(b)["m"]
    merged = editor.merge_entities(
        b, a, expected_version=2, expected_source_version=1, editor=EDITOR, reason="同一主体"
    )
    assert merged.version == 3
    assert entity(b)["m"] == 0 and entity(b)["e"]["status"] == "merged"
    assert {"建设单位", "总经理"} <= set(entity(a)["e"]["aliases"])
    change = editor.change(merged.seq)
    assert change.op == "entity.merge" and change.before["source_id"] == b
    with pytest.raises(StaleEdit):
        editor.revert(renamed.seq, editor=EDITOR, reason="r")  # the merge came after
    editor.revert(merged.seq, editor=EDITOR, reason="不是同一主体")
    assert entity(b)["m"] == mentions_b and entity(b)["e"].get("status") is None
    assert "总经理" not in entity(a)["e"]["aliases"]
    assert json.dumps(editor.history(a)[-1].after, ensure_ascii=False).count("reverts") == 1


def test_the_verifier_accepts_an_asserted_fact_only_with_the_flag_visible():
    """Pure: no graph. A value only an editor's asserted triple states verifies, and says so."""
    from kg.verifier import EvidenceClause, TripleFact, Verifier

    text = "第二条 建设单位应当自收到进度款支付申请之日起三十日内审核完毕。"

    def clause(asserted: bool) -> EvidenceClause:
        triples = [TripleFact("审核", "期限", "30日")]
        if asserted:
            triples.append(TripleFact("加急审核", "期限", "10日", {"surface": "十日内"}, asserted=True))
        return EvidenceClause(
            "D/第二条", 2, "active", "D", "测试付款管理办法", 1, "第二条", text, triples=triples
        )

    answer = "建设单位应当自收到进度款支付申请之日起十日内审核完毕[[D/第二条]]。"
    plain = Verifier().verify_against(answer, {"D/第二条": clause(False)})
    assert not plain.verified and [a.normalized for a in plain.unsupported] == ["10日"]
    flagged = Verifier().verify_against(answer, {"D/第二条": clause(True)})
    assert flagged.verified and [a.normalized for a in flagged.asserted] == ["10日"]
    assert flagged.citations[0].asserted
    honest = Verifier().verify_against(answer.replace("十日", "三十日"), {"D/第二条": clause(True)})
    assert honest.verified and not honest.asserted and not honest.citations[0].asserted


def test_reingesting_the_source_meets_a_hand_edit(graph, ingest, editor, neo4j_driver):
    """Policy: an unchanged source keeps the edit silently; a changed one is a conflict that keeps
    the edit and stores the source's text as a pending version (or, asked, lets the source win)."""
    cid = _cid(graph, "第二条")
    editor.edit_clause_text(
        cid, "第二条 建设单位应当在十五日内审核完毕。", expected_version=1, editor=EDITOR, reason="r"
    )
    # another clause changes in the source; 第二条's source text did not: the edit stays, no conflict
    report = ingest(MANUAL.replace("50万元", "100万元"), on_edit_conflict="keep")
    assert report.conflicts == [] and report.ingested[0].clauses_updated == 1
    versions, texts = _versions(neo4j_driver, cid)
    assert versions[-1] == (2, "active", 1) and "十五日" in texts[-1]
    # the source changes 第二条 too: a conflict; the edit stays active, the source's text is pending
    changed = MANUAL.replace("三十日", "二十日")
    report = ingest(changed, on_edit_conflict="keep")
    (conflict,) = report.conflicts
    assert (conflict.clause_id, conflict.edited_version, conflict.pending_version) == (cid, 2, 3)
    versions, texts = _versions(neo4j_driver, cid)
    assert versions[-2:] == [(2, "active", 1), (3, "pending", None)] and "二十日" in texts[-1]
    assert GraphEvidence(neo4j_driver).fetch([cid])[cid].version == 2
    assert [c.op for c in editor.history(cid)][-1] == "clause.pending"
    # an edit now lands above the pending version
    again = editor.edit_clause_text(
        cid, "第二条 建设单位应当在十日内审核完毕。", expected_version=2, editor=EDITOR, reason="r"
    )
    assert again.version == 4
    # policy "source": the source's (new) text replaces the edit, still reported
    report = ingest(MANUAL.replace("三十日", "二十五日"), on_edit_conflict="source")
    (conflict,) = report.conflicts
    assert conflict.policy == "source" and conflict.pending_version == 5
    evidence = GraphEvidence(neo4j_driver).fetch([cid])[cid]
    assert evidence.version == 5 and "二十五日" in evidence.text


def test_a_clause_retired_by_hand_stays_retired_when_its_source_changes(graph, ingest, editor, neo4j_driver):
    cid = _cid(graph, "第三条")
    editor.retire_clause(cid, expected_version=1, editor=EDITOR, reason="废止")
    # the file changes elsewhere and in 第三条: the retirement is a conflict, the source text pending
    report = ingest(MANUAL.replace("50万元", "80万元").replace("三十日", "二十日"), on_edit_conflict="keep")
    assert [(c.clause_id, c.edited_version, c.pending_version) for c in report.conflicts] == [(cid, 1, 2)]
    versions, texts = _versions(neo4j_driver, cid)
    assert [v[:2] for v in versions] == [(1, "retired"), (2, "pending")] and "80万元" in texts[1]
    assert GraphEvidence(neo4j_driver).fetch([cid])[cid].status == "retired"
    pending_seq = editor.history(cid)[-1].seq
    with pytest.raises(InvalidArgument, match="pending"):
        editor.revert(pending_seq, editor=EDITOR, reason="r")
    # a clause that vanished from the file and comes back is a new version, not an error
    other = _cid(graph, "第一条")
    ingest(MANUAL.replace("第一条 为规范工程进度款支付管理，制定本办法。\n", ""))
    assert GraphEvidence(neo4j_driver).fetch([other])[other].status == "retired"
    ingest(MANUAL)
    back = GraphEvidence(neo4j_driver).fetch([other])[other]
    assert (back.status, back.version) == ("active", 2)


def test_an_editor_triple_follows_a_text_edit_only_while_the_text_states_it(graph, editor, neo4j_driver):
    cid = _cid(graph, "第二条")
    kept = editor.add_triple(
        cid,
        TripleValues("进度款支付申请", "责任主体", "施工单位"),
        expected_version=1,
        editor=EDITOR,
        reason="r",
    )
    gone = editor.add_triple(
        cid, TripleValues("审核", "期限", "三十日"), expected_version=1, editor=EDITOR, reason="r"
    )
    forced = editor.add_triple(
        cid,
        TripleValues("加急审核", "期限", "10日"),
        expected_version=1,
        editor=EDITOR,
        reason="通知",
        force=True,
    )
    result = editor.edit_clause_text(
        cid, "第二条 建设单位应当自收到施工单位进度款支付申请之日起十五日内审核完毕。",
        expected_version=1, editor=EDITOR, reason="修订",
    )  # fmt: skip
    assert result.dropped_triples == (gone.target_id,)
    facts = {(t.subject, t.object): t for t in GraphEvidence(neo4j_driver).fetch([cid])[cid].triples}
    assert ("进度款支付申请", "施工单位") in facts and not facts[("进度款支付申请", "施工单位")].asserted
    assert facts[("加急审核", "10日")].asserted and ("审核", "三十日") not in facts
    assert editor.current_version(kept.target_id) == ("triple", 1) and forced.asserted
    assert editor.history(cid)[-1].after["dropped_triples"] == [gone.target_id]
