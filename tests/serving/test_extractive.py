"""The extractive backend quotes real corpus clauses verbatim, cites them, and verifies."""

from __future__ import annotations

import re
import time

import pytest

from kg.citations import parse_citations, strip_markers
from kg.prompting import REFUSAL_ANSWER
from kg.verifier import EvidenceClause, Verifier, is_refusal
from serving.backends import BackendConfig, ExtractiveBackend, make_backend

FRAME = re.compile(r"^根据《[^》]+》[^：]*规定：")


@pytest.fixture(scope="module")
def backend():
    return make_backend(BackendConfig())  # the default kind


def _quoted_sentences(answer: str) -> list[str]:
    """The answer's quoted sentences, markers and frames removed."""
    out = []
    for line in answer.splitlines():
        body = FRAME.sub("", line)
        for part in re.split(r"\[\[[^\]]+\]\]", body):
            part = part.strip("。；：，")
            if part:
                out.append(part)
    return out


def _evidence(clauses) -> dict[str, EvidenceClause]:
    return {
        c.clause_id: EvidenceClause(
            c.clause_id, 1, "active", c.doc_id, c.doc_title, 1, c.number, c.text, list(c.section_path)
        )
        for c in clauses
    }


@pytest.mark.parametrize(
    ("question", "ids", "expected"),
    [
        (
            "存货应当按照什么进行初始计量？",
            ["CAS-1-存货/第五条", "CAS-1-存货/第六条", "VAT-REG/第一条"],
            "存货应当按照成本进行初始计量",
        ),
        ("纳税人销售货物的增值税税率是多少？", ["VAT-REG/第二条", "VAT-REG/第一条"], "税率为17%"),
        (
            "存货在什么条件下才能予以确认？",
            ["CAS-1-存货/第四条", "CAS-1-存货/第五条"],
            "该存货的成本能够可靠地计量",
        ),
    ],
)
def test_answer_quotes_cited_clauses_verbatim_and_verifies(backend, corpus_clauses, question, ids, expected):
    contexts = [corpus_clauses[i] for i in ids]
    generation = backend.generate(question, contexts)
    text = generation.text
    assert generation.model_id == "extractive"
    assert expected in strip_markers(text)

    parsed = parse_citations(text)
    assert parsed.malformed == []
    assert parsed.markers and set(parsed.clause_ids) <= set(ids)
    assert parsed.clause_ids[0] == ids[0]  # the best clause is quoted first

    by_id = {c.clause_id: c.text for c in contexts}
    sentences = _quoted_sentences(text)
    assert 1 <= len(sentences) <= backend.max_sentences
    for sentence in sentences:
        assert any(sentence in clause_text for clause_text in by_id.values()), sentence
    # each sentence cites the clause it was copied from
    for line in text.splitlines():
        for part, cited in re.findall(r"([^\[\]]+)\[\[([^\]]+)\]\]", FRAME.sub("", line)):
            assert part.strip("。；：，") in by_id[cited]

    result = Verifier().verify_against(text, _evidence(contexts), allowed_ids=ids)
    assert result.verified, result.unsupported


def test_sentences_keep_clause_order_and_the_article_number_is_not_repeated(backend, corpus_clauses):
    clause = corpus_clauses["CAS-1-存货/第五条"]
    text = backend.generate("存货的初始计量和存货成本包括哪些？", [clause]).text
    assert text == (
        "根据《企业会计准则第1号——存货（2006）》第五条规定："
        "存货应当按照成本进行初始计量[[CAS-1-存货/第五条]]。"
        "存货成本包括采购成本、加工成本和其他成本[[CAS-1-存货/第五条]]。"
    )


def test_at_most_max_clauses_and_max_sentences(corpus_clauses):
    backend = ExtractiveBackend(max_clauses=3, max_sentences=4)
    contexts = list(corpus_clauses.values())  # five clauses, many sentences sharing 存货/税率
    text = backend.generate("存货 纳税人 税率 成本 确认 计量", contexts).text
    parsed = parse_citations(text)
    assert len(parsed.markers) <= 4
    assert set(parsed.clause_ids) <= {c.clause_id for c in contexts[:3]}


def test_citations_follow_the_retrievers_order_one_best_sentence_per_clause_first(corpus_clauses):
    contexts = [corpus_clauses[i] for i in ("CAS-1-存货/第五条", "CAS-1-存货/第四条", "VAT-REG/第二条")]
    text = ExtractiveBackend(max_sentences=3).generate("存货的成本怎么确认和计量？税率是多少？", contexts).text
    ids = list(dict.fromkeys(parse_citations(text).clause_ids))
    assert ids == [c.clause_id for c in contexts]  # every clause answers part of the ask, in rank order


LETTER = (
    "尊敬的领导您好！我公司是一家制造业企业。准则规定：“存货应当按照成本进行初始计量。”"
    "我们在实务中有不同理解。请问存货成本具体包括哪些内容？谢谢！"
)


def test_a_letter_gets_the_sentence_that_answers_its_ask_not_the_rule_it_quoted(backend, corpus_clauses):
    clause = corpus_clauses["CAS-1-存货/第五条"]
    text = backend.generate(LETTER, [clause]).text
    assert "存货成本包括采购成本、加工成本和其他成本" in text
    assert "存货应当按照成本进行初始计量" not in text  # the letter quoted it; quoting it back answers nothing
    assert Verifier().verify_against(text, _evidence([clause]), allowed_ids=[clause.clause_id]).verified


def test_no_contexts_is_the_refusal(backend):
    generation = backend.generate("存货应当按照什么进行初始计量？", [])
    assert generation.text == REFUSAL_ANSWER
    assert is_refusal(generation.text)
    assert parse_citations(generation.text).markers == []
    assert "".join(backend.stream("存货应当按照什么进行初始计量？", [])) == REFUSAL_ANSWER


def test_stream_deltas_join_to_the_generated_text(backend, corpus_clauses):
    contexts = [corpus_clauses["CAS-1-存货/第四条"], corpus_clauses["CAS-1-存货/第五条"]]
    question = "存货在什么条件下才能予以确认？"
    deltas = list(backend.stream(question, contexts))
    assert len(deltas) > 1
    assert "".join(deltas) == backend.generate(question, contexts).text


def test_a_past_deadline_yields_nothing(backend, corpus_clauses):
    generation = backend.generate(
        "存货应当按照什么进行初始计量？", [corpus_clauses["CAS-1-存货/第五条"]], deadline=time.monotonic() - 1
    )
    assert generation.text == ""
