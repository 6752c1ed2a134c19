"""The spaCy pipeline of the rule extractor: jieba tokens, party entities, modal verbs.

A blank ``zh`` pipeline with jieba segmentation gives word tokens, on which two kinds of
patterns work better than character regexes:

* parties (施工单位, 县级以上人民政府财政部门, 纳税人) are a head word (…单位, …部门, …人) with
  a few modifier words before it; an ``EntityRuler`` with token patterns marks them ``PARTY``;
* modal verbs (应当, 不得, 可以, 必须, 应, 须) must be whole words, so that 应 in 应收款 or
  相应 is not taken for an obligation.

The words come from a :class:`zhtext.Tokenizer` rather than from spaCy's own ``jieba``
segmenter, which cuts with jieba's process-wide tokenizer (lazily initialized, unsafe to
initialize from two threads). The cut is jieba's accurate mode with HMM and the default
dictionary, by jieba-rs (zhtext.tokenize says where it differs: ASCII runs joined by dots or
dashes stay whole). Its dictionary loads once per process on first use, so :func:`build_nlp`
is called once per extractor, never at import time.
"""

from __future__ import annotations

import spacy
from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc
from spacy.util import get_words_and_spaces
from spacy.vocab import Vocab

from zhtext import CJK, Tokenizer, default_tokenizer

PARTY = "PARTY"

_CJK = rf"^[{CJK}]+$"
# Heads that take organisational modifiers: 人民政府 财政部门, 施工 总 承包单位.
_ORG_HEAD = r"(单位|部门|机关|机构|政府|委员会|人员|成员|银行|法院|公司|国务院|办事处|财政部)$"
# Roles; only the listed modifiers may precede them (保障 农民工 is not a party name).
_ROLE_HEAD = (
    r"^(.*(纳税人|承包人|发包人|招标人|投标人|中标人|当事人|负责人|出租人|承租人|法人|出卖人|买受人"
    r"|债务人|债权人|代理人|农民工|企业|经理|客户|投资者|供应商|会计人员)|个人)$"
)
_ROLE_MODIFIERS = [
    "小规模",
    "一般",
    "主管",
    "施工",
    "建设",
    "建筑",
    "项目",
    "承包",
    "总",
    "分包",
    "招标",
    "投标",
    "中标",
    "会计",
    "单位",
    "用人",
    "发包",
    "专业",
    "劳务",
    "境外",
    "其他",
    "直接",
    "法定",
    "代表",
    "房地产",
    "开发",
    "实际",
    "施工单位",
]
# Words that never belong to a party name; they end the leftward extension of an organisation.
_STOP = [
    "的", "与", "和", "及", "以及", "或", "或者", "由", "对", "向", "在", "经", "将", "被", "从", "为",
    "以", "按照", "依照", "根据", "依据", "当", "除", "其", "该", "本", "各", "并", "且", "而", "即",
    "是", "有", "无", "不", "应当", "应", "不得", "可以", "必须", "须", "负责", "给予", "处", "予以",
    "责令", "提供", "通知", "要求", "委托", "指定", "设立", "报告", "报送", "交", "交由", "请求",
    "申请", "告知", "通报", "提交", "督促", "协助", "配合", "会同", "组织", "接受", "允许", "批准",
    "确定", "属于", "包括", "同", "同时", "所", "所在", "向其", "督办", "建立", "加强", "拖欠",
    "支付", "保障", "招用", "使用", "违反", "没有", "未", "已", "其中", "之", "等", "经过",
]  # fmt: skip

MODALS = {
    "应当": "应当",
    "应": "应当",
    "应予": "应当",
    "应该": "应当",
    "不得": "不得",
    "不应": "不得",
    "可以": "可以",
    "必须": "必须",
    "须": "必须",
    "务必": "必须",
}


def party_patterns() -> list[dict]:
    org = [
        {"TEXT": {"REGEX": _CJK, "NOT_IN": _STOP}, "OP": "{0,4}"},
        {"TEXT": {"REGEX": _ORG_HEAD}},
    ]
    role = [
        {"TEXT": {"IN": _ROLE_MODIFIERS}, "OP": "{0,3}"},
        {"TEXT": {"REGEX": _ROLE_HEAD}},
    ]
    return [{"label": PARTY, "pattern": org}, {"label": PARTY, "pattern": role}]


class JiebaSegmenter:
    """A spaCy tokenizer (text -> ``Doc``) whose words are a :class:`zhtext.Tokenizer`'s cut.

    spaCy's documented way of replacing the tokenizer of a pipeline (``nlp.tokenizer = ...``);
    whitespace is kept as spaCy's ``spaces`` so that character offsets match the text.
    """

    def __init__(self, vocab: Vocab, tokenizer: Tokenizer) -> None:
        self.vocab = vocab
        self._tokenizer = tokenizer

    def __call__(self, text: str) -> Doc:
        words, spaces = get_words_and_spaces(self._tokenizer.words(text), text)
        return Doc(self.vocab, words=words, spaces=spaces)


def build_nlp(tokenizer: Tokenizer | None = None) -> Language:
    """A blank ``zh`` pipeline with jieba segmentation and the party ``EntityRuler``.

    Args:
        tokenizer: the word segmenter (the process-wide :func:`zhtext.default_tokenizer` when None).
    """
    nlp = spacy.blank("zh")  # character segmentation until the tokenizer is replaced: jieba not loaded
    nlp.tokenizer = JiebaSegmenter(nlp.vocab, tokenizer or default_tokenizer())
    ruler = nlp.add_pipe("entity_ruler", config={"overwrite_ents": True})
    ruler.add_patterns(party_patterns())
    return nlp


def modal_matcher(nlp: Language) -> Matcher:
    """Matches modal verbs as whole tokens, including the negated 不 + 应当 / 应."""
    matcher = Matcher(nlp.vocab)
    matcher.add("MODAL", [[{"TEXT": {"IN": list(MODALS)}}]])
    matcher.add("NEG_MODAL", [[{"TEXT": "不"}, {"TEXT": {"IN": ["应当", "应", "应该"]}}]])
    return matcher


def find_modals(doc: Doc, matcher: Matcher) -> list[tuple[int, int, str, str]]:
    """``(start_char, end_char, predicate, surface)`` of each modal verb, in text order.

    ``不应当`` becomes 不得; a bare 应/应当 preceded by 不 is reported once, as the negation.
    """
    found: dict[int, tuple[int, int, str, str]] = {}
    for match_id, start, end in matcher(doc):
        span = doc[start:end]
        label = doc.vocab.strings[match_id]
        if label == "NEG_MODAL":
            found[span.end_char] = (span.start_char, span.end_char, "不得", span.text)
        elif span.end_char not in found:
            found[span.end_char] = (span.start_char, span.end_char, MODALS[span.text], span.text)
    return sorted(found.values())
