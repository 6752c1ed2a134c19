"""Issue 12's own example on the sample manuals: a letter is answered like the short question.

After ``make up`` the short question "质量保证金按多少比例预留？" was answered and verified, while
the same question written as staff write it (a greeting, their situation, "按照手册的规定", two
asks, thanks) got "手册中未找到相关规定。". Both must now be answered from 业务手册 第二十条, with
the packaged retrieval model and the extractive backend ``make up`` serves.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.neo4j

SHORT = "质量保证金按多少比例预留？"
LETTER = (
    "您好！我们项目部最近在办理工程结算，按照手册的规定，竣工结算审定以后，质量保证金是按照结算价款的"
    "多少比例来预留的？另外保修期满以后多长时间内要退还？谢谢！"
)
RULE = "质量保证金按结算总价的百分之三预留"


@pytest.fixture(scope="module")
def service(neo4j_server, neo4j_driver, samples_dir, tmp_path_factory):
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service, build_qa_service

    with neo4j_driver.session() as s:
        s.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()
    settings = Settings(neo4j_uri=neo4j_server.bolt_uri, home=tmp_path_factory.mktemp("samples-home"))
    report = build_ingest_service(settings, neo4j_driver).ingest([samples_dir / "manuals"])
    assert report.ok, report.failed
    service = build_qa_service(settings, neo4j_driver)
    yield service
    service.close()


@pytest.mark.parametrize("question", [SHORT, LETTER], ids=["short", "letter"])
def test_the_letter_is_answered_like_the_short_question(service, question):
    from serving.types import Caller, Role

    answer = service.ask(question, 5, Caller("key-test", Role.READER))
    assert answer.status.value == "VERIFIED", (answer.status, answer.text)
    assert "手册中未找到相关规定" not in answer.text
    assert RULE in answer.text
    first = answer.citations[0]  # the best citation first: the article that states the rate
    assert RULE in first.quote and first.clause_id.endswith("第二十条"), [
        c.clause_id for c in answer.citations
    ]
