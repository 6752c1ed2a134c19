"""Optional LLM triple extraction over any OpenAI-compatible chat endpoint (off by default).

The rule extractor is precise but narrow; an LLM finds facts phrased in ways no rule foresaw. Its
output is untrusted text, so every triple is parsed strictly (pydantic), malformed ones are
dropped rather than repaired, and the survivors carry ``origin='llm'`` and the model's own
confidence (0.6 when it gives none) so that reviewers and the verifier can weigh them apart.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import structlog
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ingest.types import ClauseNode, DocumentTree
from kg.extraction import triple_id
from kg.llm_endpoint import LlmEndpoint
from kg.types import Extraction, TripleRecord
from kgqa.errors import KgqaError

log = structlog.get_logger(__name__)

Predicate = Literal[
    "定义", "应当", "不得", "可以", "必须", "条件", "期限", "金额", "比例", "阈值", "责任主体"
]

SYSTEM_PROMPT = """你是法规与会计准则的知识抽取器。从给定条款中抽取事实三元组，只输出 JSON 数组，不要输出其他文字。
每个元素是对象：{"subject": 主体, "predicate": 谓词, "object": 客体, "qualifiers": {}, "confidence": 0到1}。
谓词只能是：定义、应当、不得、可以、必须、条件、期限、金额、比例、阈值、责任主体。
期限、金额、比例、阈值的客体写规范值（如 20日、3%、50000元），原文写入 qualifiers.surface。
只抽取条款原文明确陈述的事实；没有事实时输出 []。"""

_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")


class LlmTriple(BaseModel):
    """One triple as the model must return it; anything else in the object is ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    subject: str = Field(min_length=1, max_length=200)
    predicate: Predicate
    object: str = Field(min_length=1, max_length=1000)
    qualifiers: dict[str, Any] = Field(default_factory=dict)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)

    @field_validator("qualifiers", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


def parse_triples(content: str) -> tuple[list[LlmTriple], int]:
    """Parse a model reply into valid triples and the number of rejected elements.

    Accepts a JSON array, or an object with a ``triples`` array, optionally inside a Markdown
    code fence. A reply that is not JSON at all counts as one rejection.
    """
    text = _FENCE.sub("", content.strip())
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return [], 1
    if isinstance(data, dict):
        data = data.get("triples", [])
    if not isinstance(data, list):
        return [], 1
    valid: list[LlmTriple] = []
    rejected = 0
    for element in data:
        try:
            valid.append(LlmTriple.model_validate(element))
        except ValidationError:
            rejected += 1
    return valid, rejected


def section_path(tree: DocumentTree, clause: ClauseNode) -> str:
    """``会计法 > 第一章 总则``: where the clause sits, which helps the model resolve its subject."""
    sections = {s.section_id: s for s in tree.sections}
    parts: list[str] = []
    current = sections.get(clause.section_id)
    while current is not None and len(parts) < 10:
        parts.append(f"{current.number} {current.title}".strip())
        current = sections.get(current.parent_id) if current.parent_id else None
    return " > ".join([tree.title, *reversed(parts)])


class LlmTripleExtractor:
    """Triple extraction by a chat model behind an OpenAI-compatible API (vLLM, Ollama, OpenAI...).

    Args:
        endpoint: the endpoint (``KGQA_LLM__*``); its ``max_retries`` are done by the client.
        temperature: sampling temperature; 0 keeps re-extraction stable.
        max_concurrency: clauses in flight at once.

    Raises:
        ConfigError: the endpoint has no URL or model.
    """

    def __init__(self, endpoint: LlmEndpoint, temperature: float = 0.0, max_concurrency: int = 4) -> None:
        endpoint.require("LLM triple extraction (KGQA_LLM_TRIPLES=true)")
        self._base_url = endpoint.base_url
        self._max_concurrency = max_concurrency
        self._chat = ChatOpenAI(
            base_url=endpoint.base_url,
            model=endpoint.model,
            api_key=endpoint.key,
            temperature=temperature,
            timeout=endpoint.timeout_s,
            max_retries=endpoint.max_retries,
        )

    def _messages(self, tree: DocumentTree, clause: ClauseNode) -> list[BaseMessage]:
        body = clause.text
        extra = [f"{i.marker}{i.text}" for i in clause.items if i.text and i.text not in body]
        prompt = f"位置：{section_path(tree, clause)}\n条款编号：{clause.number}\n条款原文：\n" + "\n".join(
            [body, *extra]
        )
        return [SystemMessage(SYSTEM_PROMPT), HumanMessage(prompt)]

    def extract(self, tree: DocumentTree) -> Extraction:
        """Ask the model about every clause and keep the triples that validate.

        Raises:
            KgqaError: when the endpoint cannot be reached or refuses the requests.
        """
        requests = [self._messages(tree, c) for c in tree.clauses]
        try:
            replies = self._chat.batch(requests, config={"max_concurrency": self._max_concurrency})
        except Exception as exc:  # the client raises transport- and API-specific errors
            raise KgqaError(
                f"LLM triple extraction failed at {self._base_url} ({exc}); check the endpoint and model name, "
                "or turn LLM extraction off"
            ) from exc
        triples: dict[str, TripleRecord] = {}
        rejected_total = 0
        for clause, reply in zip(tree.clauses, replies, strict=True):
            content = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
            parsed, rejected = parse_triples(content)
            rejected_total += rejected
            for t in parsed:
                tid = triple_id(clause.clause_id, t.predicate, t.subject, t.object)
                triples[tid] = TripleRecord(
                    triple_id=tid,
                    clause_id=clause.clause_id,
                    subject=t.subject,
                    predicate=t.predicate,
                    object=t.object,
                    qualifiers=t.qualifiers,
                    confidence=0.6 if t.confidence is None else t.confidence,
                    origin="llm",
                )
        if rejected_total:
            log.warning("llm_triples_rejected", doc_id=tree.doc_id, rejected=rejected_total)
        return Extraction(triples=list(triples.values()))
