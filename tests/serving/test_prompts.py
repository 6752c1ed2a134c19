"""The prompt (kg/prompting.py) as the backends render it from retrieved clauses: deterministic,
lists every clause with its marker, states the rules."""

from __future__ import annotations

from kg.citations import MARKER_RE, parse_citations
from kg.prompting import (
    REFUSAL_ANSWER,
    SYSTEM_PROMPT,
    ContextClause,
    build_messages,
    render_context,
)
from kg.verifier import REFUSAL_TEXT

QUESTION = "存货应当按照什么进行初始计量？"


def test_messages_are_deterministic(corpus_clauses):
    contexts = list(corpus_clauses.values())
    first = build_messages(QUESTION, contexts)
    again = build_messages(QUESTION, [c for c in contexts])
    assert first == again
    assert [m["role"] for m in first] == ["system", "user"]
    assert first[1]["content"] == QUESTION


def test_every_context_is_listed_in_rank_order_with_its_id_title_path_and_text(corpus_clauses):
    contexts = [corpus_clauses["VAT-REG/第二条"], corpus_clauses["CAS-1-存货/第五条"]]
    system = build_messages(QUESTION, contexts)[0]["content"]
    ids_in_context_part = parse_citations(system.split("可依据的条款：", 1)[1]).clause_ids
    assert ids_in_context_part == ["VAT-REG/第二条", "CAS-1-存货/第五条"]
    for clause in contexts:
        assert clause.text in system
        assert f"《{clause.doc_title}》" in system
    assert "第三章 计量 第五条" in system  # section path, then the number


def test_system_prompt_names_the_marker_format_and_the_refusal():
    # the example in the rules is a well-formed marker the parser accepts
    assert MARKER_RE.search(SYSTEM_PROMPT)
    assert "[[条款编号]]" in SYSTEM_PROMPT
    assert REFUSAL_ANSWER in SYSTEM_PROMPT and REFUSAL_ANSWER.startswith(REFUSAL_TEXT)
    assert "数字" in SYSTEM_PROMPT and "原样" in SYSTEM_PROMPT


def test_render_context_takes_any_clause_like_object():
    clause = ContextClause("HR-1/第三条", "差旅费管理办法", "第三条", "  出差须事先审批。 ", ("第一章 总则",))
    assert render_context(clause, 2) == (
        "【条款2】标记：[[HR-1/第三条]]\n出处：《差旅费管理办法》 第一章 总则 第三条\n内容：出差须事先审批。"
    )


def test_no_contexts_still_gives_a_prompt_that_asks_for_the_refusal():
    system = build_messages(QUESTION, [])[0]["content"]
    assert "（无）" in system and REFUSAL_ANSWER in system
    assert parse_citations(system.split("可依据的条款：", 1)[1]).markers == []
