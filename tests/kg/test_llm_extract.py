"""The LLM extractor against a tiny OpenAI-compatible server on a real socket."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ingest.types import ClauseNode, DocumentTree, SectionNode
from kg.llm_endpoint import LlmEndpoint
from kg.llm_extract import LlmTripleExtractor, parse_triples
from kgqa.errors import KgqaError


def _reply_for(prompt: str) -> str:
    """What a model would say: the definition found in the clause, plus junk to be rejected."""
    if "乱码" in prompt:
        return "抱歉，我无法输出 JSON。"
    m = re.search(r"([^\s，。：]+)，是指([^。]+)。", prompt.split("条款原文：", 1)[-1])
    triples: list[object] = []
    if m:
        term = re.sub(r"^.*所称", "", m.group(1))
        triples.append({"subject": term, "predicate": "定义", "object": m.group(2), "confidence": 0.9})
    triples += [
        {"subject": "企业", "predicate": "应当", "object": "确认收入"},  # no confidence -> 0.6
        {"subject": "", "predicate": "定义", "object": "空主体"},
        {"subject": "企业", "predicate": "猜测", "object": "不在谓词表"},
        {"subject": "企业", "predicate": "应当", "object": "确认收入", "confidence": 7},
        "not an object",
    ]
    return "```json\n" + json.dumps(triples, ensure_ascii=False) + "\n```"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self.path.endswith("/chat/completions"):
            self.send_error(404)
            return
        self.server.prompts.append(body["messages"][-1]["content"])  # type: ignore[attr-defined]
        content = _reply_for(body["messages"][-1]["content"])
        payload = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.prompts = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _tree() -> DocumentTree:
    def clause(number: str, ordinal: int, text: str) -> ClauseNode:
        return ClauseNode(
            f"CAS-14-收入/{number}", number, ordinal, text, 1, 1, "CAS-14-收入#第一章", "0" * 64
        )

    return DocumentTree(
        "CAS-14-收入",
        "企业会计准则第14号——收入",
        "md",
        Path("cas14.md"),
        "0" * 64,
        1,
        0,
        [SectionNode("CAS-14-收入#第一章", "第一章", "总则", 1, 1, None)],
        [
            clause("第二条", 2, "第二条 收入，是指企业在日常活动中形成的经济利益的总流入。"),
            clause("第三条", 3, "第三条 本准则所称客户，是指与企业订立合同并支付对价的一方。"),
            clause("第九十九条", 99, "第九十九条 乱码测试。"),
        ],
        [],
    )


def test_extracts_validates_and_rejects(server: ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    ex = LlmTripleExtractor(LlmEndpoint(base_url=url, model="tiny-test-model", max_retries=0)).extract(_tree())
    by_clause = {(t.clause_id, t.predicate, t.subject): t for t in ex.triples}
    income = by_clause[("CAS-14-收入/第二条", "定义", "收入")]
    assert income.object == "企业在日常活动中形成的经济利益的总流入"
    assert income.confidence == 0.9 and income.origin == "llm"
    assert by_clause[("CAS-14-收入/第三条", "定义", "客户")].object == "与企业订立合同并支付对价的一方"
    duty = by_clause[("CAS-14-收入/第二条", "应当", "企业")]
    assert duty.confidence == 0.6
    # the empty subject, the unknown predicate, confidence 7 and the string are all dropped
    assert {t.predicate for t in ex.triples} == {"定义", "应当"}
    assert len(ex.triples) == 4
    # the non-JSON reply for 第九十九条 yields nothing rather than an error
    assert not [t for t in ex.triples if t.clause_id == "CAS-14-收入/第九十九条"]
    prompts = server.prompts  # type: ignore[attr-defined]
    assert any("企业会计准则第14号——收入 > 第一章 总则" in p and "第二条" in p for p in prompts)


def test_parse_triples_strictness() -> None:
    ok, bad = parse_triples(
        '{"triples": [{"subject": "纳税人", "predicate": "期限", "object": "15日"}, {"x": 1}]}'
    )
    assert [(t.subject, t.object) for t in ok] == [("纳税人", "15日")] and bad == 1
    assert parse_triples("not json") == ([], 1)
    assert parse_triples("[]") == ([], 0)


def test_unreachable_endpoint_raises_kgqa_error() -> None:
    extractor = LlmTripleExtractor(LlmEndpoint(base_url="http://127.0.0.1:9/v1", model="none", max_retries=0))
    with pytest.raises(KgqaError, match="LLM triple extraction failed"):
        extractor.extract(_tree())
