"""Understanding a long question: greeting, quoted rules, background and the actual ask.

Staff write to the accounting department the way they write letters: a greeting, the rule they
read (quoted back, often misnumbered), the background of their case, and somewhere the question
itself (请问…, 是否…, 希望解答的是…), then thanks. Each part is good for something different:

- the **ask** decides what the answer must address: it is the query of the dense encoder and the
  heaviest part of the lexical query, and the extractive answer picks sentences for it;
- **quotes** (text between quotation marks that reads like a rule) should be found verbatim or
  nearly so in their clause, which makes a cheap, strong signal (the quote lookup);
- the **background** carries the domain words (售后回租, 同业存单) that a short ask leaves out;
- the **greeting** and thanks carry nothing and are dropped.

Standards and articles the letter names are found by :mod:`serving.retrieval.direct` on the whole
text; this module only cuts the text into parts. The rules are plain string work, so that a
misparse can be read and fixed: see ``tests/serving/test_question.py`` for the examples.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>|~])")
_SPACES = re.compile(r"[ \t\u3000\xa0]+")

# Opening courtesies: "尊敬的财政部会计司领导，您好，" "老师您好！" "你好，" "领导好："
_GREETING_HEAD = re.compile(
    r"^(?:(?:尊敬的|敬爱的)[^，,。！!：:；;]{0,20}[，,：:！!]?\s*)?"
    r"(?:(?:各位)?(?:老师|领导|专家|同志|会计司)?(?:您|你)好(?:呀|啊)?[，,。！!：:；;~～\s]*|"
    r"(?:各位)?(?:老师|领导|专家)(?:们)?好[，,。！!：:；;\s]*)?"
)
# Closing courtesies: "谢谢！" "非常感谢！" "诚盼回复！" "麻烦…给个建议吧，谢谢！"
_THANKS = re.compile(
    r"(?:(?:非常|十分|万分|多)?(?:感谢|谢谢)(?:您|你|老师|领导|各位)*(?:的)?(?:解答|回复|指导|帮助)?"
    r"|(?:诚盼|盼|期待|恳请|望)(?:您的)?(?:回复|答复|解答)|祝(?:您)?工作顺利|辛苦了)[！!。.~～\s]*$"
)
_SELF_INTRO = re.compile(r"^(?:我|本人)是(?:一名|一位|一家|某)?[^，,。]{0,20}(?:人员|会计|员工|从业者|财务)")

# Quotation marks around rule text. A short quoted phrase (“合同取得成本”) is a term, not a quote.
_QUOTE = re.compile(r"[“「『\"]([^”」』\"]{12,}?)[”」』\"]")
MIN_QUOTE_CHARS = 12
# A short quoted phrase is a term the letter insists on (“合同取得成本”, “应付客户对价”).
_TERM = re.compile(r"[“「『\"‘]([^”」』\"’，。；,;]{2,11})[”」』\"’]")

# Markers of the sentence that asks. Order does not matter; any one makes a sentence an ask.
_ASK_MARK = re.compile(
    r"请问|想问|求问|咨询|请教|请领导|请老师|烦请|恳请|希望(?:解答|明确|回复|得到|给予)|问题(?:是|如下)|"
    r"是否|能否|可否|是不是|能不能|可不可以|要不要|有没有|"
    r"如何|怎么|怎样|怎么样|为何|为什么|什么|哪些|哪个|哪种|哪里|哪一|多少|几年|几天|何时|"
    r"[吗呢]|？|\?|还是"
)
# An ask introduced by a lead-in: "烦请领导予以指导：X" / "问题是：X" / "请问：X"
_LEAD_IN = re.compile(r"(?:指导|解答|明确|问题(?:如下|是)?|请问|请教|咨询|求问)[：:]\s*")
# Sentence ends for cutting a letter into parts; a colon that introduces an ask is handled apart.
_END = re.compile(r"(?<=[。！？!?；;])|\n+")


@dataclass
class Question:
    """A question cut into its parts (each part as written, in order of appearance).

    Attributes:
        text: the whole question after light cleaning (Markdown escapes removed, spaces folded).
        greeting: courtesies at the start and thanks at the end.
        quotes: rule texts the letter quotes back (between quotation marks, >= 12 characters).
        terms: short phrases the letter puts in quotation marks (account names, defined terms).
        background: everything that is neither greeting, quote nor ask.
        asks: the sentences that ask something, best guess first in order of appearance.
    """

    text: str
    greeting: list[str] = field(default_factory=list)
    quotes: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    background: list[str] = field(default_factory=list)
    asks: list[str] = field(default_factory=list)

    @property
    def ask(self) -> str:
        """The ask as one string; the whole question minus courtesies when no sentence asks."""
        if self.asks:
            return "".join(self.asks)
        return "".join(self.background) or self.text

    @property
    def body(self) -> str:
        """The question without greeting and thanks (what the lexical query reads)."""
        return "".join([*self.background, *self.asks]) or self.text

    @property
    def is_letter(self) -> bool:
        """More than a one-sentence question: background, quotes or several sentences."""
        return bool(self.quotes or self.background)


def clean(text: str) -> str:
    """Undo Markdown escapes (``\\-``, ``\\_``) and fold runs of spaces; keep everything else."""
    text = unicodedata.normalize("NFC", text).replace("\ufeff", "")
    text = _MD_ESCAPE.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip()


def _sentences(text: str) -> list[str]:
    return [s for s in (p.strip() for p in _END.split(text)) if s]


def parse_question(text: str) -> Question:
    """Cut ``text`` into greeting, quotes, background and asks.

    Args:
        text: a question as the portal received it: one line, or a letter of up to a few
            thousand characters.

    Returns:
        The parts. A short question is one ask with no background.
    """
    cleaned = clean(text)
    q = Question(cleaned)
    rest = cleaned
    head = _GREETING_HEAD.match(rest)
    if head and head.group(0).strip():
        q.greeting.append(head.group(0).strip())
        rest = rest[head.end() :]

    # quotes are lifted out first: a quoted rule often contains 是否/如何 of its own
    def lift(m: re.Match[str]) -> str:
        q.quotes.append(m.group(1).strip())
        return "。"

    rest = _QUOTE.sub(lift, rest)
    q.terms = list(dict.fromkeys(m.group(1).strip() for m in _TERM.finditer(rest)))
    sentences = _sentences(rest)
    while sentences:
        tail = _THANKS.search(sentences[-1])
        if tail is None:
            break
        before = sentences[-1][: tail.start()].rstrip("，,、 ")
        q.greeting.append(sentences[-1][tail.start() :].strip())
        if before:
            sentences[-1] = before
            break
        sentences.pop()
    for sentence in sentences:
        lead = _LEAD_IN.search(sentence)
        if lead and lead.end() < len(sentence):
            head_part, ask_part = sentence[: lead.start()], sentence[lead.end() :]
            if head_part.strip("，,、 "):
                q.background.append(head_part)
            q.asks.append(ask_part)
        elif _ASK_MARK.search(sentence) and not _SELF_INTRO.match(sentence):
            q.asks.append(sentence)
        else:
            q.background.append(sentence)
    if not q.asks and q.background:  # no sentence asks: the last one is most likely the point
        q.asks.append(q.background.pop())
    return q


__all__ = ["MIN_QUOTE_CHARS", "Question", "clean", "parse_question"]
