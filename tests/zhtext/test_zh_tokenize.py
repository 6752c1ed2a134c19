"""The tokenizer: canonical numbers, stop words, user words, and sharing between threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from zhtext import STOPWORDS, Tokenizer, canonical_number, default_tokenizer

DEFINITION = "本手册所称计量周期，是指上月二十六日至本月二十五日的期间。"


@pytest.fixture(scope="module")
def plain() -> Tokenizer:
    return default_tokenizer()


def test_numbered_parts_become_one_canonical_token(plain):
    assert plain.tokens("建筑法第22条规定了什么？") == plain.tokens("建筑法第二十二条")
    assert "第二十二条" in plain.tokens("第 22 条")
    assert plain.tokens("企业会计准则第十四号") == plain.tokens("企业会计准则第14号")
    assert canonical_number("14", "号") == "第14号" and canonical_number("十十", "条") == "第十十条"


def test_stop_words_and_punctuation_are_dropped(plain):
    tokens = plain.tokens("合同需要满足哪些条件才能确认收入？")
    assert {"合同", "条件", "确认", "收入"} <= set(tokens)
    assert not set(tokens) & STOPWORDS and "？" not in tokens
    assert plain.tokens("请问一下，什么是？") == []


def test_search_mode_adds_sub_words(plain):
    assert {"建筑", "工程", "建筑工程"} <= set(plain.tokens("建筑工程"))


def test_words_is_jiebas_plain_cut_with_punctuation(plain):
    words = plain.words("税率为3%。")
    assert "".join(words) == "税率为3%。" and "税率" in words and "。" in words
    assert plain.words("应收账款", hmm=False) == ["应收", "账款"]


def test_user_words_change_segmentation():
    plain = default_tokenizer()
    assert "计量周期" not in plain.words(DEFINITION) and "计量周期" not in plain.tokens(DEFINITION)
    custom = Tokenizer(["计量周期", " 计量周期 ", "x"])
    assert custom.user_words == ("计量周期",)
    assert "计量周期" in custom.words(DEFINITION)
    assert {"计量", "周期", "计量周期"} <= set(custom.tokens(DEFINITION))  # sub-words stay searchable
    assert "计量周期" not in default_tokenizer().words(DEFINITION), (
        "user words never leak into the shared dictionary"
    )


def test_unknown_words_become_whole_with_a_user_dictionary():
    text = "项目部应当核对甲乙签证单后付款。"
    assert "甲乙签证单" not in default_tokenizer().words(text, hmm=False)
    assert "甲乙签证单" in Tokenizer(["甲乙签证单"]).words(text, hmm=False)


def test_eight_threads_get_identical_results():
    texts = [DEFINITION, "建筑法第22条规定了什么？", "施工单位应当在七日内书面提出。", "发票丢失怎么办"] * 50
    tokenizer = Tokenizer(["计量周期"])
    expected = [(tokenizer.tokens(t), tokenizer.words(t)) for t in texts]

    def run(_: int):
        return [(tokenizer.tokens(t), tokenizer.words(t)) for t in texts]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, range(8)))
    assert all(r == expected for r in results)


def test_tokenizers_built_from_eight_threads_at_once_keep_their_own_words():
    words = [["计量周期"], ["二十六日至本月"]] * 4
    with ThreadPoolExecutor(max_workers=8) as pool:
        tokenizers = list(pool.map(Tokenizer, words))
    for w, tokenizer in zip(words, tokenizers, strict=True):
        assert tokenizer.words(DEFINITION) == Tokenizer(w).words(DEFINITION)
        assert w[0] in tokenizer.words(DEFINITION)
        other = "二十六日至本月" if w[0] == "计量周期" else "计量周期"
        assert other not in tokenizer.words(DEFINITION)


def _python_jieba(words: list[str]):
    import jieba

    seg = jieba.Tokenizer()
    seg.initialize()
    for word in words:
        seg.add_word(word)
    return seg


class _PythonSegmenter:
    """Python jieba behind rjieba's interface: a Tokenizer holding it cuts as zhtext used to."""

    def __init__(self, jieba_tokenizer) -> None:  # noqa: ANN001 - jieba.Tokenizer
        self._jieba = jieba_tokenizer

    def cut(self, text: str, hmm: bool) -> list[str]:
        return list(self._jieba.cut(text, HMM=hmm))

    def cut_for_search(self, text: str, hmm: bool) -> list[str]:
        return list(self._jieba.cut_for_search(text, HMM=hmm))


def _cuts_differing(tokenizer: Tokenizer, texts: list[str], words: list[str]) -> list[str]:
    """Texts whose search tokens (what BM25, coverage and quotes index) or plain words without HMM
    (the verifier's atoms) differ between ``tokenizer`` and the same tokenizer on Python jieba."""
    reference = Tokenizer(words)
    reference._seg = _PythonSegmenter(_python_jieba(words))
    return [
        t
        for t in texts
        if tokenizer.tokens(t) != reference.tokens(t)
        or tokenizer.words(t, hmm=False) != reference.words(t, hmm=False)
    ]


def test_the_rust_cuts_are_jiebas_own_with_and_without_user_words():
    """zhtext cuts with jieba-rs for speed; the index, coverage and the verifier were measured on
    Python jieba's tokens, so search mode and the plain cut without HMM must stay token for token."""
    texts = [
        DEFINITION,
        "企业应当按照《企业会计准则第14号——收入》第五条的规定，在客户取得相关商品控制权时确认收入。",
        "以公允价值计量且其变动计入其他综合收益的金融资产，计提预期信用损失准备 100 元。",
        "请问跨年度的销售折让如何账务处理？ABC公司2023年度增值税税率为13.5%，金额1,000.50元。",
        "项目部应当核对甲乙签证单后付款；竣工结算审定后按结算价款的3%预留质量保证金。",
    ]
    assert _cuts_differing(default_tokenizer(), texts, []) == []
    words = ["计量周期", "甲乙签证单", "质量保证金", "合同履约成本"]
    assert _cuts_differing(Tokenizer(words), texts, words) == []


def test_the_rust_cuts_are_jiebas_own_on_the_accounting_standards(corpus_dir):
    from zhtext import fold

    texts = [
        fold(line)
        for path in sorted((corpus_dir / "cas-all").glob("*.md"))[:12]
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert len(texts) > 500
    assert _cuts_differing(default_tokenizer(), texts, []) == []


def test_background_counts_are_jiebas_own_for_every_dictionary_key():
    """The domain feature's background: every word and prefix jieba's loaded dictionary holds gets
    the same count from the compact table, and the same total; ``BP`` (not a word, though
    ``BP机`` is) must not borrow the count of ``偂``, whose ``str`` buffer has the same bytes."""
    from zhtext.background import background

    python = _python_jieba([])
    table = background()
    assert table.total == python.total and table.words > 300_000
    assert [w for w, n in python.FREQ.items() if table.count(w) != n] == []
    assert table.count("偂") > 0 and table.count("BP") == 0 and table.count("\udc80") == 0
    plain = default_tokenizer()
    assert plain.background_logprob("计入") > plain.background_logprob("摊销费用率")


def test_a_lone_surrogate_is_a_token_of_its_own_between_the_cuts_around_it(plain):
    """rjieba cannot encode ``\\udc80`` (a JSON escape can leave one in a model's answer); Python
    jieba kept it as a token, and the extractor's spaCy words must still spell the text."""
    text = "会计\udc80准则规定应当确认收入"
    words = plain.words(text)
    assert "".join(words) == text and "\udc80" in words and "会计" in words
    assert plain.words(text, hmm=False)[:3] == ["会计", "\udc80", "准则"]
    assert {"准则", "确认", "收入"} <= set(plain.tokens(text))
    assert Tokenizer(["计量周期", "坏\udc80词"]).user_words == ("计量周期",)  # an index build goes on


def test_the_hmm_cut_keeps_joined_ascii_runs_whole():
    """Where jieba-rs's HMM cut departs from Python jieba's (which split these at every dot, dash
    or underscore): token F1 and ROUGE-L of answers holding such runs moved with the switch."""
    plain = default_tokenizer()
    for run in ("www.mof.gov.cn", "2023-01-01", "e-mail", "x_y_z", "1.2.3"):
        assert run in plain.words(f"详见{run}的说明"), run
    money = ["税率", "为", "13.5%", "，", "金额", "1", ",", "000.50", "元"]
    assert plain.words("税率为13.5%，金额1,000.50元") == money  # as Python jieba cut it


def test_without_rjiebas_own_default_a_shared_one_of_ours_serves(monkeypatch):
    """rjieba's module default is a private name: a release without it must not break tokenizers."""
    import rjieba

    from zhtext import tokenize

    expected = default_tokenizer().tokens("建筑工程的合同履约成本")
    module_default = rjieba._DEFAULT_JIEBA
    monkeypatch.delattr(rjieba, "_DEFAULT_JIEBA")
    monkeypatch.setattr(tokenize, "_OWN_DEFAULT", None)
    assert Tokenizer()._seg is module_default  # found through the public cut, bound to it
    monkeypatch.setattr(rjieba, "cut", lambda text, hmm=True: [])  # neither name left
    first, second = Tokenizer(), Tokenizer()
    assert first._seg is second._seg is tokenize._OWN_DEFAULT is not module_default
    assert first.tokens("建筑工程的合同履约成本") == expected


def test_importing_zhtext_builds_no_segmenter_and_loads_no_counts():
    """rjieba's import builds a 35 MB segmenter: processes that never cut (the CLI's --help, an
    ingest worker parsing a PDF) must not pay it, nor the background table's numpy."""
    import subprocess
    import sys

    probe = "import sys, zhtext; print(sorted(m for m in ('rjieba', 'jieba', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("计入 161 v\n摊销\n", ":2: not a jieba dictionary"),
        ("", "no word has a count"),
        ("计入 x v\n", ":1:"),
    ],
)
def test_a_broken_background_dictionary_is_named_with_its_line(tmp_path, content, reason):
    from zhtext.background import Background

    path = tmp_path / "dict.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RuntimeError, match=reason) as err:
        Background(path)
    assert str(path) in str(err.value)
