"""An edit landing while an answer is being checked: the strict fallback stays consistent.

The service checks a generated answer against the evidence of the versions retrieval handed to it;
under ``strict`` an unsupported answer is replaced by the extractive one. If the evidence snapshot
refreshes between those two steps (an editor's change lands mid-answer), a second read would check
a quote of the old text against the new version and return UNVERIFIED under ``strict``: seen in
the training loop's edit test under load. The fallback now quotes and checks one read.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.neo4j

QUESTION = "经办人员应当在费用发生后多少日内提交报销单？"


class StaleModel:
    """Says what a model trained before the edit says: 三十日, citing the clause it was taught."""

    model_id = "stale-adapter"

    def generate(self, question, contexts, *, deadline=None):
        from serving.types import Generation

        clause = next(c for c in contexts if "三十日" in c.text or "十五日" in c.text)
        return Generation(
            f"经办人员应当在费用发生后三十日内提交报销单[[{clause.clause_id}]]。", self.model_id
        )

    def stream(self, question, contexts, *, deadline=None):
        yield self.generate(question, contexts).text


class RefreshFirst:
    """The extractive backend, with the evidence snapshot refreshed just before it runs: the
    edit becomes visible exactly between the generated answer's check and the fallback."""

    def __init__(self, inner, evidence) -> None:
        self.inner, self.evidence, self.model_id = inner, evidence, inner.model_id

    def generate(self, question, contexts, *, deadline=None):
        self.evidence.refresh()
        return self.inner.generate(question, contexts)


def test_an_edit_between_check_and_fallback_still_gives_a_verified_consistent_answer(
    clean_graph, neo4j_server, neo4j_driver, samples_dir, tmp_path
):
    from kg.edits import Editor
    from kg.evidence import GraphEvidence
    from kgqa.settings import Settings
    from kgqa.wiring import build_graph_editor, build_ingest_service, build_qa_service
    from serving.retrieval.config import RetrievalConfig
    from serving.types import Caller, Role

    # nothing refreshes by itself: the test decides when the edit becomes visible
    settings = Settings(
        neo4j_uri=neo4j_server.bolt_uri,
        home=tmp_path / "home",
        retrieval=RetrievalConfig(stale_check_s=3600),
        evidence_refresh_s=3600,
    )
    report = build_ingest_service(settings, neo4j_driver).ingest(
        [samples_dir / "manuals" / "费用报销操作指引.md"]
    )
    assert report.ok, report.failed
    service = build_qa_service(settings, neo4j_driver, backend=StaleModel())
    try:
        caller = Caller("key-test", Role.READER)
        before = service.ask(QUESTION, 3, caller)
        assert before.status.value == "VERIFIED" and before.model_id == "stale-adapter"
        clause = next(c for c in before.citations if "三十日" in c.quote)
        text = GraphEvidence(neo4j_driver).fetch([clause.clause_id])[clause.clause_id].text
        build_graph_editor(settings, neo4j_driver).edit_clause_text(
            clause.clause_id,
            text.replace("三十日", "十五日"),
            expected_version=clause.clause_version,
            editor=Editor("key-editor0001", "editor"),
            reason="制度修订",
        )
        # retrieval and the snapshot still hold version 1, so the stale answer checks out against
        # it; make it fail (the model now cites the clause with a wrong value) and refresh mid-way
        service._extractive = RefreshFirst(service._extractive, service._evidence)
        service._backends.set(WrongValue())
        after = service.ask(QUESTION, 3, caller)
    finally:
        service.close()
    assert after.status.value == "VERIFIED", (after.text, after.unsupported)
    assert "extractive fallback" in after.model_id
    for c in after.citations:  # every quote is in the version the citation names
        assert (
            c.quote
            in GraphEvidence(neo4j_driver)
            .fetch_versions([(c.clause_id, c.clause_version)])[(c.clause_id, c.clause_version)]
            .text
        )


class WrongValue(StaleModel):
    """A model that states a value no version of the clause has (so its answer is replaced)."""

    def generate(self, question, contexts, *, deadline=None):
        from serving.types import Generation

        clause = next(c for c in contexts if "三十日" in c.text or "十五日" in c.text)
        return Generation(
            f"经办人员应当在费用发生后九十日内提交报销单[[{clause.clause_id}]]。", self.model_id
        )
