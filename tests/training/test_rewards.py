"""GRPO reward components on hand-written completions against real corpus clauses.

The clauses are read from the shared corpus (``corpus_dir``); the evidence source used for the
"one graph read per batch" checks is a counting wrapper around real clauses served to the real
verifier, and the graph-judged variant runs against the session's real Neo4j.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from types import SimpleNamespace

import pytest
from test_metrics import FAPIAO, VAT, read_context

from kg.prompting import REFUSAL_ANSWER, ContextClause, build_messages
from kg.verifier import EvidenceClause
from training.rewards import (
    COMPONENTS,
    ContextEvidence,
    GraphBatchEvidence,
    RewardConfig,
    RewardSuite,
    RewardWeights,
    context_clause,
    cot_layout_score,
    length_reward,
)

STOCK = "standards/企业会计准则第1号——存货（2006）.md"

VAT12 = "VAT-REG/第十二条"
FP35 = "FPGL/第三十五条"


def _record(rid: str, question: str, reference: str, contexts: list[dict], gold: list[str], *,
            answerable: bool = True, cot: bool = False) -> dict:  # fmt: skip
    shown = [ContextClause(c["clause_id"], c["doc_title"], c["number"], c["text"]) for c in contexts]
    return {
        "prompt": build_messages(question, shown),
        "id": rid,
        "reference": reference,
        "answerable": answerable,
        "cot": cot,
        "gold_clause_ids": gold,
        "contexts": contexts,
    }


@pytest.fixture(scope="module")
def ctx(corpus_dir) -> dict[str, dict]:
    return {
        "vat12": read_context(corpus_dir / VAT, "VAT-REG", "第十二条"),
        "vat24": read_context(corpus_dir / VAT, "VAT-REG", "第二十四条"),
        "fp35": read_context(corpus_dir / FAPIAO, "FPGL", "第三十五条"),
        "stock5": read_context(corpus_dir / STOCK, "CAS-1-存货", "第五条"),
    }


@pytest.fixture(scope="module")
def records(ctx) -> dict[str, dict]:
    return {
        "rate": _record("rate", "小规模纳税人的增值税征收率是多少？", f"小规模纳税人增值税征收率为3%[[{VAT12}]]。",
                        [ctx["vat24"], ctx["vat12"]], [VAT12]),
        "fine": _record("fine", "虚开发票金额在1万元以下的，可以并处多少罚款？",
                        f"虚开金额在1万元以下的，可以并处5万元以下的罚款[[{FP35}]]。", [ctx["fp35"]], [FP35]),
        "unanswerable": _record("u", "员工出差的住宿费标准是多少？", REFUSAL_ANSWER, [ctx["stock5"]], [],
                                answerable=False),
    }  # fmt: skip


def _score(suite: RewardSuite, pairs: Sequence[tuple[dict, str]]):
    return suite.score([r for r, _ in pairs], [c for _, c in pairs])


# --- faithful > wrong amount > invented clause ----------------------------------------------------


def test_faithful_answer_beats_wrong_amount_and_invented_clause(records):
    rate, fine = records["rate"], records["fine"]
    scores = _score(
        RewardSuite(),
        [
            (rate, f"小规模纳税人增值税征收率为3%[[{VAT12}]]。"),  # faithful
            (rate, f"小规模纳税人增值税征收率为5%[[{VAT12}]]。"),  # wrong rate, real citation
            (rate, "小规模纳税人增值税征收率为3%[[VAT-REG/第九十九条]]。"),  # invented clause id
            (fine, f"虚开金额在1万元以下的，可以并处5万元以下的罚款[[{FP35}]]。"),
            (fine, f"虚开金额在1万元以下的，可以并处10万元以下的罚款[[{FP35}]]。"),
            (fine, "虚开金额在1万元以下的，可以并处5万元以下的罚款[[FPGL/第九十条]]。"),
        ],
    )
    for faithful, wrong, invented in (scores[0:3], scores[3:6]):
        assert faithful.rewards == {"citation": 1.0, "hallucination": 0.0, "correctness": 1.0, "format": 1.0,
                                    "abstention": 0.0, "length": 0.0}  # fmt: skip
        assert faithful.total == pytest.approx(2.5)
        # the wrong number is the verifier's unsupported atom; the citation itself is valid
        assert wrong.rewards["citation"] == 1.0
        assert [a["kind"] for a in wrong.unsupported] in (["rate"], ["amount"])
        assert wrong.rewards["hallucination"] == -0.5
        assert wrong.rewards["correctness"] < 0.75  # the key fact is missing
        # an invented id: citation -1, and nothing the answer says is backed by the graph
        assert invented.rewards["citation"] == -1.0
        assert invented.rewards["hallucination"] <= -1.0
        assert invented.rewards["correctness"] == 1.0  # the text itself matches the reference
        assert faithful.total > wrong.total > invented.total
    assert [a["text"] for a in scores[1].unsupported] == ["5%"]
    assert [a["text"] for a in scores[4].unsupported] == ["100000元"]


def test_citation_outside_the_prompt_is_punished_less_than_invented(records):
    # FP35 is a real clause (another record's context in this batch) but not in the rate prompt
    rate, fine = records["rate"], records["fine"]
    s = _score(RewardSuite(), [(rate, f"小规模纳税人增值税征收率为3%[[{FP35}]]。"), (fine, "罚款[[FPGL/第九十条]]。")])
    assert s[0].rewards["citation"] == -0.5
    assert s[1].rewards["citation"] == -1.0
    # one valid and one invented id: the mean
    s = _score(RewardSuite(), [(rate, f"小规模纳税人增值税征收率为3%[[{VAT12}]][[VAT-REG/第九十九条]]。")])
    assert s[0].rewards["citation"] == 0.0


# --- refusals (TruthRL-style) -----------------------------------------------------------------------


def test_refusal_rewards(records):
    rate, un = records["rate"], records["unanswerable"]
    s = _score(
        RewardSuite(),
        [
            (un, REFUSAL_ANSWER),  # correct refusal
            (un, "住宿费标准为每晚500元[[CAS-1-存货/第五条]]。"),  # answering the unanswerable
            (rate, REFUSAL_ANSWER),  # refusing the answerable
            (rate, f"小规模纳税人增值税征收率为3%[[{VAT12}]]。"),
        ],
    )
    good, answered, false_refusal, faithful = s
    assert good.refusal and good.rewards == {"citation": None, "hallucination": 0.0, "correctness": None,
                                             "format": None, "abstention": 1.0, "length": 0.0}  # fmt: skip
    assert answered.rewards["abstention"] == -1.0 and answered.rewards["correctness"] is None
    assert answered.rewards["hallucination"] < 0  # 500元 is nowhere in 第五条
    assert false_refusal.rewards["abstention"] == -1.0 and false_refusal.rewards["correctness"] == 0.0
    assert good.total > answered.total
    assert faithful.total > false_refusal.total


# --- format, length ---------------------------------------------------------------------------------


def test_format_markers_and_cot_layout(records, ctx):
    rate = records["rate"]
    cot_rate = {**rate, "id": "rate-cot", "cot": True}
    cot_answer = (
        f"分析：问题涉及小规模纳税人的征收率[[{VAT12}]]。\n"
        f"依据：小规模纳税人增值税征收率为3%[[{VAT12}]]。\n"
        f"结论：征收率为3%[[{VAT12}]]。"
    )
    s = _score(
        RewardSuite(),
        [
            (rate, "小规模纳税人增值税征收率为3%[VAT-REG/第十二条]。"),  # malformed marker
            (rate, "小规模纳税人增值税征收率为3%。"),  # no marker
            (cot_rate, cot_answer),
            (cot_rate, f"小规模纳税人增值税征收率为3%[[{VAT12}]]。"),  # right answer, no layout
        ],
    )
    assert s[0].rewards["format"] == -1.0  # no well-formed marker, one malformed
    assert s[0].rewards["citation"] == -1.0
    assert s[1].rewards["format"] == 0.0  # no marker (-1), nothing malformed (+1)
    assert s[1].rewards["citation"] == -1.0  # an answer without citation
    assert s[2].rewards["format"] == 1.0
    assert s[3].rewards["format"] == pytest.approx(1 / 3)  # (1 + 1 - 1) / 3
    assert cot_layout_score("结论：是。\n分析：否。") == pytest.approx(-1 / 3)  # only 结论... out of order
    assert cot_layout_score("分析：甲。\n依据：乙。") == pytest.approx(1 / 3)
    assert cot_layout_score("没有结构") == -1.0


def test_length_penalty_is_mild_and_soft():
    cfg = RewardConfig(length_limit_tokens=100, length_soft_fraction=0.5)
    assert [length_reward(n, cfg) for n in (10, 50, 75, 100, 130)] == [0.0, 0.0, -0.5, -1.0, -1.0]
    assert RewardWeights().length < RewardWeights().correctness  # mild: weight 0.1 by default


def test_config_rejects_inverted_citation_values():
    with pytest.raises(ValueError, match="citation_valid"):
        RewardConfig(citation_valid=-1.0)


# --- the TRL calling convention ------------------------------------------------------------------------


def test_suite_speaks_trl(records):
    """Called as GRPOTrainer calls it: columns as lists, conversational completions, kwargs it adds."""
    suite = RewardSuite(RewardConfig(weights=RewardWeights(format=0.25)))
    batch = [records["rate"]] * 2 + [records["unanswerable"]] * 2
    completions = [
        [{"role": "assistant", "content": f"小规模纳税人增值税征收率为3%[[{VAT12}]]。"}],
        [{"role": "assistant", "content": "小规模纳税人增值税征收率为3%[[VAT-REG/第九十九条]]。"}],
        [{"role": "assistant", "content": REFUSAL_ANSWER}],
        [{"role": "assistant", "content": "住宿费每晚500元[[CAS-1-存货/第五条]]。"}],
    ]
    columns = {k: [r[k] for r in batch] for k in ("id", "reference", "answerable", "cot", "gold_clause_ids")}
    columns["contexts_json"] = [json.dumps(r["contexts"], ensure_ascii=False) for r in batch]
    logged: dict[str, list[float]] = {}
    kwargs = {
        **columns,
        "trainer_state": SimpleNamespace(global_step=7),
        "log_metric": lambda name, value: logged.setdefault(name, []).append(value),
        "log_extra": lambda column, values: None,
    }
    assert [f.__name__ for f in suite.functions] == list(COMPONENTS)
    assert suite.weights == [1.0, 1.0, 1.0, 0.25, 1.0, 0.1]
    out = {f.__name__: f(prompts=[r["prompt"] for r in batch], completions=completions,
                         completion_ids=[[1] * 12] * 4, **kwargs) for f in suite.functions}  # fmt: skip
    assert all(len(v) == 4 for v in out.values())
    assert out["citation"][:2] == [1.0, -1.0] and out["citation"][2] is None
    assert out["abstention"] == [0.0, 0.0, 1.0, -1.0]
    assert out["correctness"][2:] == [None, None]
    assert suite.batches_scored == 1  # six functions, one scoring of the batch
    assert logged["verifier/refusal_rate"] == [0.25]
    totals = [s.total for s in suite.score(batch, completions, [[1] * 12] * 4, step=7)]
    assert totals[0] == pytest.approx(sum(w * out[c][0] for w, c in zip(suite.weights, COMPONENTS, strict=True)))


# --- one graph read per batch ---------------------------------------------------------------------------


class CountingSource:
    """An EvidenceSource over real corpus clauses that counts its fetches (as GraphEvidence would be hit)."""

    def __init__(self, clauses: dict[str, EvidenceClause]) -> None:
        self.clauses = clauses
        self.calls: list[list[str]] = []

    def fetch(self, clause_ids: Sequence[str]) -> dict[str, EvidenceClause]:
        self.calls.append(list(clause_ids))
        return {cid: self.clauses[cid] for cid in clause_ids if cid in self.clauses}


def test_graph_is_read_once_per_batch(records, ctx):
    clauses = {c["clause_id"]: context_clause(c) for c in ctx.values()}
    # a clause the prompts never show, retired in the graph
    retired = replace(context_clause({**ctx["vat24"], "clause_id": "VAT-REG/第二十三条", "number": "第二十三条"}),
                      status="retired")  # fmt: skip
    clauses[retired.clause_id] = retired
    source = CountingSource(clauses)
    suite = RewardSuite(evidence_source=GraphBatchEvidence(source=source))
    rate, fine = records["rate"], records["fine"]
    batch = [rate, rate, rate, fine, fine, fine]
    completions = [
        f"小规模纳税人增值税征收率为3%[[{VAT12}]]。",
        "征收率为3%[[VAT-REG/第二十三条]]。",  # real id, retired
        "征收率为3%[[VAT-REG/第九十九条]]。",  # invented
        f"可以并处5万元以下的罚款[[{FP35}]]。",
        f"可以并处5万元以下的罚款[[{VAT12}]]。",  # real and active, but outside this prompt
        REFUSAL_ANSWER,
    ]
    columns = {k: [r[k] for r in batch] for k in ("id", "reference", "answerable", "cot", "gold_clause_ids", "contexts")}
    results = {f.__name__: f(prompts=None, completions=completions, **columns) for f in suite.functions}
    assert len(source.calls) == 1  # six reward functions, six completions: one fetch
    assert sorted(source.calls[0]) == sorted([VAT12, "VAT-REG/第二十三条", "VAT-REG/第九十九条", FP35])
    assert results["citation"] == [1.0, -1.0, -1.0, 1.0, -0.5, None]
    assert suite.graph_reads == 1
    # the next batch: one more read
    suite.functions[0](prompts=None, completions=list(reversed(completions)),
                       **{k: list(reversed(v)) for k, v in columns.items()})  # fmt: skip
    assert len(source.calls) == 2


def test_contexts_only_evidence_never_reads_and_dedupes(records):
    batch = [records["rate"]] * 8 + [records["fine"]] * 8
    evidence = ContextEvidence().collect(batch, [VAT12])
    assert evidence.graph_reads == 0
    assert set(evidence.pool) == {VAT12, "VAT-REG/第二十四条", FP35}
    # the same context entry is one EvidenceClause object for every record that shows it
    assert evidence.for_record(0)[VAT12] is evidence.for_record(7)[VAT12]


def test_graph_batch_evidence_on_neo4j(clean_graph, neo4j_server, corpus_dir):
    """The live graph judges ids the prompt did not show: real-but-outside vs invented."""
    from kg.evidence import GraphEvidence
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service

    report = build_ingest_service(Settings(neo4j_uri=neo4j_server.bolt_uri), clean_graph).ingest([corpus_dir / VAT])
    assert report.ok, report.failed
    doc_id = report.ingested[0].doc_id
    ids = [f"{doc_id}/第十二条", f"{doc_id}/第二十四条"]
    found = GraphEvidence(clean_graph).fetch(ids)
    assert set(found) == set(ids)
    shown = found[ids[0]]
    contexts = [{"clause_id": shown.clause_id, "version": shown.version, "doc_id": shown.doc_id,
                 "doc_title": shown.doc_title, "number": shown.number, "text": shown.text,
                 "section_path": shown.section_path, "triples": []}]  # fmt: skip
    record = _record("g", "小规模纳税人的增值税征收率是多少？", f"小规模纳税人增值税征收率为3%[[{ids[0]}]]。",
                     contexts, [ids[0]])  # fmt: skip

    class Counting(GraphEvidence):
        reads = 0

        def fetch(self, clause_ids):
            Counting.reads += 1
            return super().fetch(clause_ids)

    suite = RewardSuite(evidence_source=GraphBatchEvidence(source=Counting(clean_graph)))
    completions = [
        f"小规模纳税人增值税征收率为3%[[{ids[0]}]]。",
        f"小规模纳税人增值税征收率为3%[[{ids[1]}]]。",  # in the graph, not in the prompt
        f"小规模纳税人增值税征收率为3%[[{doc_id}/第九十九条]]。",  # not in the graph
    ]
    cols = {k: [record[k]] * 3 for k in ("id", "reference", "answerable", "cot", "gold_clause_ids", "contexts")}
    out = {f.__name__: f(prompts=None, completions=completions, **cols) for f in suite.functions}
    assert Counting.reads == 1
    assert out["citation"] == [1.0, -0.5, -1.0]
    assert out["hallucination"][0] == 0.0 and out["hallucination"][1] < 0 and out["hallucination"][2] < 0
    totals = [s.total for s in suite.score([record] * 3, completions)]
    assert totals[0] > totals[1] > totals[2]
    assert all(math.isfinite(t) for t in totals)
