"""Redaction of personal data: what must go, what must stay, and that nothing leaks."""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter
from pathlib import Path

import pytest
import structlog
import yaml

from ingest.config import RedactConfig
from ingest.redact import Redactor, valid_bank_card, valid_resident_id
from ingest.types import Block, CleanDocument, RawTable
from kgqa.errors import ConfigError

CASES = yaml.safe_load((Path(__file__).parent / "redaction_cases.yaml").read_text(encoding="utf-8"))

# Check digits computed with ISO 7064 MOD 11-2 (IDs) and Luhn (cards); the tests below assert
# the validators agree, so a broken validator fails loudly instead of silently skipping.
ID_X = "11010519491231002X"
ID_DIGIT = "110105199003071239"
ID_BAD_CHECK = "110105199003071238"
ID_BAD_MONTH = "110105199013071232"  # valid check digit, month 13
CARD_UNIONPAY = "6222020200112233446"
CARD_VISA = "4111111111111111"
CARD_BAD_LUHN = "6222020200112233445"
ISBN_LUHN_VALID = "9787500000099"  # also a valid ISBN-13: must stay


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(RedactConfig())


def test_checksum_helpers_agree_with_fixtures() -> None:
    assert valid_resident_id(ID_X) and valid_resident_id(ID_X.lower()) and valid_resident_id(ID_DIGIT)
    assert not valid_resident_id(ID_BAD_CHECK)
    assert not valid_resident_id(ID_BAD_MONTH)
    assert valid_resident_id("110105491231002")  # old 15-digit form: 1949-12-31
    assert valid_bank_card(CARD_UNIONPAY) and valid_bank_card(CARD_VISA)
    assert valid_bank_card("6222 0202 0011 2233 446")
    assert not valid_bank_card(CARD_BAD_LUHN)
    assert not valid_bank_card(ISBN_LUHN_VALID)
    assert not valid_bank_card("2024062800000000")  # Luhn-valid, but no card starts with 2


@pytest.mark.parametrize(
    "phone",
    [
        "13812345678",
        "138-1234-5678",
        "138 1234 5678",
        "+86 138 1234 5678",
        "+8613812345678",
        "86-13812345678",
    ],
)
def test_mobile_numbers_in_every_usual_form(redactor: Redactor, phone: str) -> None:
    text, counts = redactor.redact(f"联系人手机：{phone}，工作日可拨打。")
    assert text == "联系人手机：[手机号]，工作日可拨打。"
    assert counts == Counter({"手机号": 1})


@pytest.mark.parametrize(
    "phone",
    [
        "010-12345678",
        "0755-1234567",
        "(010)12345678",
        "（021）87654321",
        "010-12345678转123",
        "0571 88886666-8001",
    ],
)
def test_landlines_with_area_code_and_extension(redactor: Redactor, phone: str) -> None:
    text, counts = redactor.redact(f"财务部电话{phone}。")
    assert text == "财务部电话[固定电话]。"
    assert counts == Counter({"固定电话": 1})


@pytest.mark.parametrize("number", [ID_X, ID_X.lower(), ID_DIGIT, "110105491231002"])
def test_resident_ids_with_valid_checksum(redactor: Redactor, number: str) -> None:
    text, counts = redactor.redact(f"经办人身份证号码{number}，已核验。")
    assert text == "经办人身份证号码[身份证号]，已核验。"
    assert counts == Counter({"身份证号": 1})


@pytest.mark.parametrize(
    "card",
    [CARD_UNIONPAY, "6222 0202 0011 2233 446", "6222-0202-0011-2233-446", CARD_VISA, "4111 1111 1111 1111"],
)
def test_bank_cards_that_pass_luhn(redactor: Redactor, card: str) -> None:
    text, counts = redactor.redact(f"请汇入账户{card}（工商银行）。")
    assert text == "请汇入账户[银行卡号]（工商银行）。"
    assert counts == Counter({"银行卡号": 1})


def test_email_addresses(redactor: Redactor) -> None:
    text, counts = redactor.redact("发送至 zhang.san+audit@finance.example.com.cn 或 li_si@example.org。")
    assert text == "发送至 [邮箱] 或 [邮箱]。"
    assert counts == Counter({"邮箱": 2})


def test_email_next_to_chinese_text_and_full_width_at(redactor: Redactor) -> None:
    text, counts = redactor.redact("请发送至zhang@example.com联系；邮箱：nizy＠tebon.com.cn")
    assert text == "请发送至[邮箱]联系；邮箱：[邮箱]"
    assert counts == Counter({"邮箱": 2})


def test_several_types_in_one_text_are_counted_per_type(redactor: Redactor) -> None:
    text, counts = redactor.redact(
        f"张三，手机13912345678，身份证{ID_DIGIT}，卡号{CARD_UNIONPAY}，手机13800001111。"
    )
    assert text == "张三，手机[手机号]，身份证[身份证号]，卡号[银行卡号]，手机[手机号]。"
    assert counts == Counter({"手机号": 2, "身份证号": 1, "银行卡号": 1})


@pytest.mark.parametrize(
    "text",
    [
        "本准则自2018年1月1日起施行，2017年修订。",
        "注册资本5,000,000元，实收1,234,567.89元，占比12.5%。",
        "依照本法第十三条、第二百零五条的规定处理。",
        "财会〔2017〕22号；国务院令第691号；GB/T 19001-2016。",
        "ISBN 978-7-5095-1234-5，ISBN 9787500000099。",
        "合同编号20240628001，日期2024-06-28，发票号码144031900111。",
        f"交易流水{CARD_BAD_LUHN}与序列号1234567890123456。",
        f"编号{ID_BAD_CHECK}，另一编号{ID_BAD_MONTH}。",
        "第十三届全国人民代表大会常务委员会第十次会议。",
        "金额19,999,999元与数量13800000000000000000件。",
    ],
)
def test_ordinary_numbers_stay(redactor: Redactor, text: str) -> None:
    redacted, counts = redactor.redact(text)
    assert redacted == text
    assert not counts


def test_the_tricky_cases_use_numbers_that_fail_their_checksums() -> None:
    # otherwise the cases below would pass through the checksum rule, not the label rule
    assert not valid_resident_id("110105199003071238")
    assert not valid_bank_card("0200 0010 0920 0012 345") and not valid_bank_card("6222 0202 0011 2233 445")
    assert not valid_bank_card("11001020300050001234") and not valid_bank_card("1100-1020-3000-5000-1234")


@pytest.mark.parametrize("case", CASES["text"], ids=[c["note"] for c in CASES["text"]])
def test_tricky_text_cases(redactor: Redactor, case: dict) -> None:
    redacted, counts = redactor.redact(case["text"])
    expected = case.get("expected", case["text"])
    assert redacted == expected
    assert sum(counts.values()) == expected.count("[") - case["text"].count("[")


@pytest.mark.parametrize("case", CASES["tables"], ids=[c["note"] for c in CASES["tables"]])
def test_tricky_table_cases(redactor: Redactor, case: dict) -> None:
    counts: Counter[str] = Counter()
    table = redactor.redact_table(RawTable(rows=case["rows"], page=1, caption="附表"), counts)
    assert table.rows == case["expected"]
    assert sum(counts.values()) == sum(cell.startswith("[") for row in case["expected"] for cell in row)


def test_labelled_numbers_are_personal_whatever_their_checksum(redactor: Redactor) -> None:
    text, counts = redactor.redact(f"证件号{ID_BAD_CHECK}，身份证号{ID_BAD_MONTH}，账号：{CARD_BAD_LUHN}。")
    assert text == "证件号[证件号码]，身份证号[身份证号]，账号：[银行账号]。"
    assert counts == Counter({"证件号码": 1, "身份证号": 1, "银行账号": 1})


def test_redaction_is_idempotent_on_its_own_placeholders(redactor: Redactor) -> None:
    once = redactor.redact("联系人：王建国，电话：010-12345678，住址：北京市朝阳区建国路88号。")[0]
    assert redactor.redact(once) == (once, Counter())


def test_file_names_lose_personal_data_in_every_component(redactor: Redactor) -> None:
    path = Path("/data/员工_13912345678/报销单_联系人_王建国_身份证-11010519491231002X.pdf")
    assert redactor.redact_path(path) == Path(
        "/data/员工_[手机号]/报销单_联系人_[姓名]_身份证-[身份证号].pdf"
    )
    assert redactor.redact_path(Path("manuals/费用报销管理办法.md")) == Path("manuals/费用报销管理办法.md")


def test_extra_patterns_become_their_own_placeholder() -> None:
    redactor = Redactor(RedactConfig(extra_patterns={"员工编号": r"EMP-\d{6}"}))
    text, counts = redactor.redact("员工EMP-004211，电话13812345678。")
    assert text == "员工[员工编号]，电话[手机号]。"
    assert counts == Counter({"员工编号": 1, "手机号": 1})


@pytest.mark.parametrize("pattern", ["(unclosed", r"\d*"])
def test_bad_extra_patterns_are_config_errors(pattern: str) -> None:
    with pytest.raises(ConfigError):
        Redactor(RedactConfig(extra_patterns={"x": pattern}))


def _document() -> CleanDocument:
    table = RawTable(
        rows=[["姓名", "手机", "卡号"], ["王五", "13812345678", CARD_VISA]],
        page=2,
        caption="联系人（邮箱 wang.wu@example.com）",
    )
    return CleanDocument(
        source_path=Path("/srv/manuals/报销手册_联系人王建国_13800138000.pdf"),
        kind="pdf",
        title="费用报销管理办法",
        sha256="0" * 64,
        pages=2,
        ocr_pages=0,
        blocks=[
            Block(kind="heading", text="第一章 总则", page=1, page_end=1),
            Block(
                kind="paragraph",
                text=f"第五条 报销人张三（身份证号{ID_X}，电话010-87654321）。",
                page=1,
                page_end=1,
            ),
            Block(
                kind="table",
                text="姓名 | 手机 | 卡号\n王五 | 13812345678 | 4111111111111111",
                page=2,
                page_end=2,
                table=table,
            ),
        ],
    )


def test_redact_document_covers_text_cells_and_captions(redactor: Redactor) -> None:
    doc = _document()
    before = copy.deepcopy(doc)
    redacted = redactor.redact_document(doc)

    assert redacted.redactions == {
        "身份证号": 1,
        "固定电话": 1,
        "手机号": 2,  # the table's and the file name's
        "银行卡号": 1,
        "邮箱": 1,
        "姓名": 3,  # 报销人张三, 王五 under 姓名, 联系人王建国 in the file name
    }
    assert redacted.blocks[1].text == "第五条 报销人[姓名]（身份证号[身份证号]，电话[固定电话]）。"
    assert redacted.blocks[2].table is not None
    assert redacted.blocks[2].table.rows[1] == ["[姓名]", "[手机号]", "[银行卡号]"]
    assert redacted.blocks[2].table.caption == "联系人（邮箱 [邮箱]）"
    assert (
        redacted.blocks[2].text == "联系人（邮箱 [邮箱]）\n姓名 | 手机 | 卡号\n[姓名] | [手机号] | [银行卡号]"
    )
    assert redacted.source_path == Path("/srv/manuals/报销手册_联系人[姓名]_[手机号].pdf")
    everything = repr(dataclasses.asdict(redacted))
    for original in (ID_X, "010-87654321", "13812345678", CARD_VISA, "wang.wu@example.com", "王五", "张三"):
        assert original not in everything
    assert "王建国" not in everything and "13800138000" not in everything
    assert doc == before  # the input is not modified


def test_redaction_logs_counts_never_originals(redactor: Redactor) -> None:
    with structlog.testing.capture_logs() as logs:
        redactor.redact_document(_document())
    assert logs, "a document with personal data logs its redaction counts"
    assert sum(logs[0]["by_type"].values()) == 9
    assert all(
        original not in repr(logs) for original in (ID_X, "13812345678", CARD_VISA, "wang.wu@example.com")
    )


def test_counts_accumulate_over_existing_ones(redactor: Redactor) -> None:
    doc = dataclasses.replace(_document(), redactions={"手机号": 2})
    assert redactor.redact_document(doc).redactions["手机号"] == 4
