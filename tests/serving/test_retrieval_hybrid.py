"""Two-stage retrieval against a real Neo4j holding three corpus documents, with the real encoder.

The module wipes the session server's graph, ingests CAS-14, 建筑法 and 会计法 once, builds the
index once (dense included), serves it with the packaged retrieval model, and empties the graph
again when it is done, so modules after it start from what they expect.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DOCS = (
    "standards/企业会计准则第14号——收入（2017年修订）.md",
    "laws/建筑法(2019-04-23).md",
    "laws/会计法(2024-06-28).md",
)
ACCOUNTING_LAW = "laws/会计法(2024-06-28).md"
NEW_SENTENCE = "集团内部单位的会计年度可以按照母公司的财务年度调整到每年四月一日起算。"
FIVE_CONDITIONS = "CAS-14-收入/第五条"


def _wipe(driver) -> None:
    with driver.session() as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()


@pytest.fixture(scope="module")
def graph(neo4j_server, neo4j_driver, corpus_dir):
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service

    _wipe(neo4j_driver)
    report = build_ingest_service(Settings(neo4j_uri=neo4j_server.bolt_uri), neo4j_driver).ingest(
        [corpus_dir / d for d in DOCS]
    )
    assert report.ok, report.failed
    yield neo4j_driver
    _wipe(neo4j_driver)


@pytest.fixture(scope="module")
def encoder(bge_encoder):
    return bge_encoder


@pytest.fixture(scope="module")
def config():
    from serving.retrieval import RetrievalConfig

    return RetrievalConfig(embed_chars=256, stale_check_s=0)


@pytest.fixture(scope="module")
def store(graph, encoder, config, tmp_path_factory):
    from serving.retrieval import IndexStore

    store = IndexStore(tmp_path_factory.mktemp("kgqa-home"), graph, config, encoder=encoder)
    report = store.rebuild()
    assert report.clauses > 150 and report.dense
    assert report.units - 5 <= report.embedded <= report.units  # identical texts are embedded once
    return store


@pytest.fixture(scope="module")
def model():
    from serving.retrieval import PACKAGED_MODEL, RetrievalModel

    return RetrievalModel.load(PACKAGED_MODEL)


@pytest.fixture(scope="module")
def retriever(store, model):
    from serving.retrieval import HybridRetriever

    return HybridRetriever(store, model)


def test_paraphrased_five_conditions_find_cas14_article_5(retriever):
    hits = retriever.retrieve(
        "跟客户签的合同要同时具备哪些条件，企业才可以在客户取得商品控制权时确认收入？", 5
    )
    assert FIVE_CONDITIONS in [h.clause_id for h in hits[:3]]
    top = next(h for h in hits if h.clause_id == FIVE_CONDITIONS)
    # provenance comes from the in-process snapshot, as the graph holds it
    assert top.doc_title.startswith("企业会计准则第14号") and top.version == 1
    assert top.section_path and "确认" in top.section_path[-1]
    assert top.text.startswith("第五条")
    assert {"bm25", "dense"} & set(top.sources)


def test_a_letter_is_answered_from_its_ask_and_the_rule_it_quotes(retriever):
    letter = (
        "尊敬的领导您好！我是一家软件公司的财务人员。我们与同一客户在一周之内先后签订了两份合同，"
        "一份是软件许可，一份是后续的实施服务，两份合同的价款是一揽子谈定的。"
        "准则规定：“企业与同一客户同时订立或在相近时间内先后订立的两份或多份合同，在满足下列条件之一时，"
        "应当合并为一份合同进行会计处理。”请问这两份合同是否应当合并为一份合同进行会计处理？谢谢！"
    )
    ranked = retriever.rank(letter)
    assert ranked.parsed.quotes and ranked.parsed.ask.startswith("请问")
    assert ranked.rankings["quote"][0] == "CAS-14-收入/第七条"  # the quoted rule is found nearly verbatim
    assert ranked.evidence
    assert "CAS-14-收入/第七条" in [c.clause_id for c in ranked.candidates[:2]]


@pytest.mark.parametrize(
    "question", ["《建筑法》第二十二条", "建筑法第22条的内容是什么", "中华人民共和国建筑法第二十二条"]
)
def test_named_article_is_retrieved_first(retriever, question):
    hits = retriever.retrieve(question, 5)
    assert hits[0].clause_id == "建筑法/第二十二条"
    assert hits[0].sources.get("direct") == 1
    assert hits[0].text.startswith("第二十二条")


@pytest.mark.parametrize(
    "question",
    [
        "您好，我们公司刚招了一批新员工，人事问试用期最长能约定几个月，试用期工资不得低于多少？谢谢！",
        "请问目前小规模纳税人增值税的征收率是多少？季度销售额多少以下可以免征增值税？",
    ],
)
def test_questions_the_manuals_do_not_answer_are_refused(retriever, question):
    ranked = retriever.rank(question)
    assert not ranked.evidence and ranked.answerable < retriever.model.threshold
    assert retriever.retrieve(question, 5) == []


def test_graph_neighbours_are_a_ranking_of_their_own(retriever):
    ranked = retriever.rank("合同开始日不符合条件的合同要持续评估吗？")
    assert ranked.rankings.get("graph")
    # CAS-14/第六条 refers to 第五条 ("不符合本准则第五条规定的合同"): the graph reaches it
    assert FIVE_CONDITIONS in ranked.rankings["graph"] or FIVE_CONDITIONS in [
        c.clause_id for c in ranked.candidates[:5]
    ]


def test_retrieval_reads_nothing_from_the_graph(store, model, config, encoder):
    """Every ranking, full-text included, is served from the snapshot: a store whose Neo4j is
    unreachable once its index was read from disk still ranks and returns clauses."""
    from neo4j import GraphDatabase

    from kgqa.errors import GraphUnavailable
    from serving.retrieval import HybridRetriever, IndexStore

    # nothing listens there; fail at once rather than retry for the driver's default 30 s
    dead = GraphDatabase.driver("bolt://127.0.0.1:9", auth=None, max_transaction_retry_time=0)
    offline = IndexStore(store.dir.parent, dead, config, encoder=encoder)
    with pytest.raises(GraphUnavailable):
        offline.load()  # the snapshot comes from disk; only the staleness check needs the graph
    retriever = HybridRetriever(offline, model, config)
    ranked = retriever.rank("建设单位领取施工许可证后多久要开工？")
    assert ranked.rankings["fulltext"] and ranked.rankings["dense"]
    hits = retriever.retrieve("建设单位领取施工许可证后多久要开工？", 5)
    assert hits and hits[0].clause_id.startswith("建筑法/")
    dead.close()


def test_a_letter_of_two_thousand_characters_is_ranked(retriever, corpus_dir):
    text = (corpus_dir / DOCS[0]).read_text(encoding="utf-8").replace("\n", "")
    letter = ("领导您好！" + text)[:1980] + "请问合同变更如何处理？"
    assert len(letter) > 1990
    ranked = retriever.rank(letter)  # the full-text query is built from key terms, never every token
    assert ranked.candidates


def test_index_persists_and_reloads_with_same_results(store, graph, config, encoder, model):
    from serving.retrieval import HybridRetriever, IndexStore

    questions = ["建设单位领取施工许可证后多久要开工？", "会计人员离职时怎么办理交接手续？"]
    before = [[h.clause_id for h in HybridRetriever(store, model).retrieve(q, 5)] for q in questions]
    encoded = encoder.texts_encoded
    reloaded = IndexStore(store.dir.parent, graph, config, encoder=encoder)
    index = reloaded.load()
    assert index.graph_version == store.current().graph_version
    assert encoder.texts_encoded == encoded + 0, "loading must not embed any clause"
    after = [[h.clause_id for h in HybridRetriever(reloaded, model).retrieve(q, 5)] for q in questions]
    assert after == before
    assert "建筑法/第九条" in before[0][:3] and "会计法/第三十九条" in before[1][:2]


def test_update_after_reingest_embeds_only_the_changed_clause(
    store, graph, config, encoder, model, corpus_dir, tmp_path
):
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service
    from serving.retrieval import HybridRetriever, IndexStore

    question = "集团内部单位的会计年度能不能按母公司财务年度从四月一日起算？"
    before = HybridRetriever(store, model).retrieve(question, 3)
    assert all(NEW_SENTENCE not in h.text for h in before)
    old_index = store.current()

    changed = tmp_path / Path(ACCOUNTING_LAW).name
    shutil.copy(corpus_dir / ACCOUNTING_LAW, changed)
    text = changed.read_text(encoding="utf-8")
    original = "第十一条 会计年度自公历1月1日起至12月31日止。"
    assert original in text
    changed.write_text(text.replace(original, original + NEW_SENTENCE), encoding="utf-8")
    report = build_ingest_service(Settings(), graph).ingest([changed], replace={"会计法"})
    assert report.ok and report.ingested[0].clauses_updated == 1

    # a store started now sees the stale index on disk, warns and updates by itself
    fresh = IndexStore(store.dir.parent, graph, config, encoder=encoder)
    encoded = encoder.texts_encoded
    assert fresh.load().graph_version == report.graph_version
    assert encoder.texts_encoded - encoded == 1, "only the changed clause may be embedded again"

    update = store.update()
    assert update.embedded == 0  # the cache on disk already holds the new text
    assert old_index is not store.current() and old_index.graph_version < store.current().graph_version
    assert old_index.bm25.search(old_index.tokenizer.tokens("会计年度"), 3), "old snapshots keep working"
    hits = HybridRetriever(store, model).retrieve(question, 3)
    assert hits[0].clause_id == "会计法/第十一条"
    assert NEW_SENTENCE in hits[0].text and hits[0].version == 2


ANSWERABLE_LETTERS = (  # each with the document that answers it
    (
        "您好！我们和客户签了合同，请问合同要同时满足哪些条件，企业才能在客户取得商品控制权时确认收入？谢谢！",
        "CAS-14-收入",
    ),
    (
        "请问企业与同一客户在相近时间内先后订立的两份合同，在什么情况下应当合并为一份合同进行会计处理？",
        "CAS-14-收入",
    ),
    (
        "领导好，我们有一批附有销售退回条款的销售，请问收入应当怎样确认，预期退还的金额怎么处理？",
        "CAS-14-收入",
    ),
    ("请问建筑工程开工前，建设单位应当按照国家有关规定向哪个部门申请领取施工许可证？", "建筑法"),
    ("您好，请问单位的会计凭证、会计账簿和财务会计报告按照会计法应当怎样保管，谁负责？", "会计法"),
    ("请问在合同开始日企业应当如何识别合同中的单项履约义务？", "CAS-14-收入"),
)
UNANSWERABLE_LETTERS = (
    "您好，我们公司刚招了一批新员工，人事问试用期最长能约定几个月，试用期工资不得低于多少？谢谢！",
    "请问目前小规模纳税人增值税的征收率是多少？季度销售额多少以下可以免征增值税？",
    "请问职工累计工作满十年，每年可以休几天带薪年休假？未休的年休假怎么补偿？",
    "您好，请问个人住房公积金的缴存比例是多少，缴存基数上限怎么定？",
    "请问失业人员领取失业保险金需要满足什么条件，最长可以领取多少个月？",
    "您好，请问企业年度报告应当在每年什么时间段通过公示系统报送？",
)


def test_calibrate_model_fits_refusal_and_dense_prior_on_labelled_letters(store):
    """``calibrate_model`` is the one recipe behind ``kgqa index calibrate`` and the bench."""
    from kgqa.errors import ConfigError
    from serving.retrieval import PACKAGED_MODEL, HybridRetriever, RetrievalModel
    from serving.retrieval.calibration import calibrate_model

    retriever = HybridRetriever(store, RetrievalModel.load(PACKAGED_MODEL))  # its own copy: fitted in place
    clause_docs = store.current().clause_docs
    questions = [q for q, _ in ANSWERABLE_LETTERS] + list(UNANSWERABLE_LETTERS)
    labels = [True] * len(ANSWERABLE_LETTERS) + [False] * len(UNANSWERABLE_LETTERS)
    answers = [[frozenset(c for c, d in clause_docs.items() if d == doc)] for _, doc in ANSWERABLE_LETTERS]
    assert all(a[0] for a in answers)  # the documents are in the index under these ids
    answers += [[] for _ in UNANSWERABLE_LETTERS]
    prior, calibration = calibrate_model(retriever, questions, labels, answers, max_answerable_refused=0.2)

    model = retriever.model
    assert prior is not None and prior.questions == 6 and model.dense_prior == prior.value
    assert model.meta["dense_prior"]["value"] == prior.value
    assert model.threshold == calibration.threshold == model.meta["calibration"]["threshold"]
    assert (calibration.answerable, calibration.unanswerable) == (6, 6)
    assert calibration.answerable_refused <= 0.2  # the budget holds on the held-out probabilities
    assert calibration.unanswerable_refused >= 0.5
    # the refitted model separates the two kinds
    p = [retriever.rank(q).answerable for q in questions]
    assert sum(p[:6]) / 6 > sum(p[6:]) / 6 + 0.2, p

    with pytest.raises(ConfigError, match="2 questions, 1 labels"):
        calibrate_model(retriever, questions[:2], labels[:1], answers[:2])
    with pytest.raises(ConfigError, match="at least 5 questions with known answers"):
        calibrate_model(retriever, questions, labels, [[]] + answers[1:2] + [[] for _ in questions[2:]])


def test_best_per_clause_is_each_clauses_best_unit(store):
    """A clause is as close as its closest chunk; every clause reads its own maximum by id."""
    import numpy as np

    index = store.current()
    values = np.random.default_rng(0).normal(size=len(index.units))
    expected: dict[str, float] = {}
    for u, unit in enumerate(index.units):
        expected[unit.clause_id] = max(expected.get(unit.clause_id, -np.inf), float(values[u]))
    best = index.best_per_clause(values)
    assert len(best) == len(expected) and set(best) == set(expected)
    assert all(best[c] == v for c, v in expected.items())
    units_of: dict[str, list[int]] = {}
    for u, unit in enumerate(index.units):
        units_of.setdefault(unit.clause_id, []).append(u)
    chunked = next(c for c in expected if len(units_of[c]) > 1)  # the module's documents have long clauses
    assert best[chunked] == max(float(values[u]) for u in units_of[chunked])
    assert best.get("no such clause", 0.0) == 0.0


def test_clause_coverage_is_its_best_units_share_of_the_terms(store):
    """Coverage of every clause at once equals the rule read unit by unit: the IDF-weighted share
    of the terms a unit holds as a word or inside a longer word, the clause's best unit counting."""
    index = store.current()
    weights = index.bm25.weights(index.tokenizer.tokens("合同取得成本的摊销期限如何确定") + ["摊"])
    total = sum(weights.values())
    expected: dict[str, float] = {}
    for u, unit in enumerate(index.units):
        words, text = index.bm25.unit_terms(u), index.normalized[u]
        share = sum(w for t, w in weights.items() if t in words or t in text) / total
        expected[unit.clause_id] = max(expected.get(unit.clause_id, 0.0), share)
    cover = index.coverage(weights)
    assert all(cover[c] == pytest.approx(v, rel=1e-12, abs=1e-15) for c, v in expected.items())
    assert max(expected.values()) > 0.5 and min(expected.values()) == 0.0  # the question is not trivial
    assert all(index.coverage({})[c] == 0.0 for c in expected)


def test_candidate_features_read_the_ask_and_body_coverage_and_the_title(retriever):
    """The reranker's coverage columns are the index's coverage of the ask's and the body's
    terms, and title coverage is the IDF share of the ask's terms in document title and path."""
    import numpy as np

    from serving.retrieval.features import CANDIDATE_FEATURES, CandidateScorer

    letter = "您好！我公司与客户签订了销售合同，为取得合同支付了销售佣金。请问合同取得成本应当如何摊销？谢谢！"
    index = retriever.store.current()
    _, signals = retriever.signals(letter)
    ids, matrix = CandidateScorer(index).features(signals, retriever.pool(signals))
    column = {name: matrix[:, k] for k, name in enumerate(CANDIDATE_FEATURES)}
    ask = index.bm25.weights(signals.ask_terms)
    body = index.bm25.weights(signals.body_terms)
    assert signals.ask_terms != signals.body_terms
    assert np.array_equal(column["ask_cover"], [index.coverage(ask)[c] for c in ids])
    assert np.array_equal(column["body_cover"], [index.coverage(body)[c] for c in ids])
    titles = [
        sum(w for t, w in ask.items() if t in index.headings[c]) / sum(ask.values()) for c in ids
    ]
    assert np.array_equal(column["title_cover"], titles)
    assert max(titles) > 0  # 收入's title holds some of the ask's terms
