"""Constants shared by the transport tests (keys, corpus files, a question the corpus answers)."""

READER_KEY = "reader-test-key-0123456789"
AUDITOR_KEY = "auditor-test-key-0123456789"
DOCS = ("standards/企业会计准则第1号——存货（2006）.md", "laws/增值税暂行条例(2017-11-19).md")
# Answered from 存货 第五条: "存货应当按照成本进行初始计量。"
QUESTION = "存货应当按照什么进行初始计量？"

# Personal data a caller may put in a question: must never reach a log (a valid ID check digit,
# so the redactor recognizes it).
PHONE = "13812345678"
RESIDENT_ID = "110101199003077635"
QUESTION_WITH_PII = f"我的手机{PHONE}，身份证{RESIDENT_ID}。{QUESTION}"


def corpus_letter(corpus_dir, length: int) -> str:
    """A real letter of exactly ``length`` characters: it quotes the 存货 standard at length, then asks.

    Letters to the compliance desk look like this: a greeting, the rules they read (pasted), the
    question at the end.
    """
    import re

    source = (corpus_dir / DOCS[0]).read_text(encoding="utf-8")
    body = "".join(re.sub(r"[*#=\s\u3000\ufeff]", "", line) for line in source.splitlines())
    head = (
        "尊敬的专家：\n您好！我司是一家制造企业，财务部在执行《企业会计准则第1号——存货》时有一处不明白。"
        "我们反复阅读了准则原文，摘录如下：\n“"
    )
    tail = "”\n以上条文中，第五条讲初始计量。请问：存货应当按照什么进行初始计量？\n此致\n敬礼！"
    room = length - len(head) - len(tail)
    quoted = (body * (room // len(body) + 1))[:room]
    return head + quoted + tail


BROKEN_INDEX_MESSAGE = "out of bounds"
"""Part of the message of the error the ``broken_phrase_index`` fixture causes: never shown to a caller."""
