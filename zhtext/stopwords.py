"""The stop words: function words and the words every question is phrased with.

One list for every caller that compares the words of a question with the words of a clause
(BM25 retrieval, the extractive backend's sentence choice): a word here would let an unrelated
question "match" any clause (什么, 如何, 规定). Content words that questions and clauses share
(合同, 期限, 审批) are never listed.
"""

from __future__ import annotations

_TEXT = """
    的 了 是 在 和 与 或 及 以及 等 对 于 对于 其 该 本 之 为 被 把 将 由 从 向 按 按照 依照 根据 并 且 而
    而且 并且 也 都 就 还 又 即 如 若 如果 的话 则 但 但是 可 可以 能 能够 会 应 应当 应该 需 需要 须 必须
    要 得 所 这 那 这个 那个 这些 那些 这种 那种 这样 那样 此 各 每 个 一 一个 有 没有 无 不 没 非 吗 呢 吧
    啊 么 呀 什么 什么样 哪些 哪个 哪 哪几 哪几种 几种 几个 几年 几天 哪天 怎么 怎样 怎么样 怎么办 如何 是否
    多少 多久 多长 多长时间 几 谁 何时 何 为什么 干什么 请问 请 问 规定 规定了 有关 相关 关于 方面 情况 时候
    我们 我 你 他 她 它 他们 公司 咱们 一下 知道 想 问题 具体 一般 通常 主要 哪里 下 上 中 内 后 前 时 里
    里面 到底 究竟 有没有 是不是 能不能 要不要 可不可以 会不会 算是 算 讲 说 怎么说 定义 含义 意思 概念 用来
    拿来 拿到 出去 好几 同一个 一份 内容 指 指的是 能否 可否 啥
    """

STOPWORDS: frozenset[str] = frozenset(_TEXT.split())
"""Function and question words; content words shared by questions and clauses are kept."""

__all__ = ["STOPWORDS"]
