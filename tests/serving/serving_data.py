"""Constants shared by the transport tests (keys, corpus files, a question the corpus answers)."""

READER_KEY = "reader-test-key-0123456789"
AUDITOR_KEY = "auditor-test-key-0123456789"
DOCS = ("standards/企业会计准则第1号——存货（2006）.md", "laws/增值税暂行条例(2017-11-19).md")
# Answered from 存货 第五条: "存货应当按照成本进行初始计量。"
QUESTION = "存货应当按照什么进行初始计量？"
