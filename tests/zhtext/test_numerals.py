"""Chinese numerals of article numbers and list markers."""

from __future__ import annotations

import pytest

from zhtext import circled_to_int, to_chinese, to_int


@pytest.mark.parametrize(
    ("numeral", "value"),
    [
        ("五", 5),
        ("十", 10),
        ("十一", 11),
        ("二十", 20),
        ("一百零三", 103),
        ("一百一十", 110),
        ("两", 2),
        ("5", 5),
        ("１０３", 103),
        ("一千零一", 1001),
    ],
)
def test_to_int(numeral: str, value: int) -> None:
    assert to_int(numeral) == value


@pytest.mark.parametrize("bad", ["", "十十", "百", "五x", "abc"])
def test_to_int_refuses_malformed_numerals(bad: str) -> None:
    with pytest.raises(ValueError):
        to_int(bad)


def test_to_chinese_round_trips_article_numbers() -> None:
    assert [to_chinese(n) for n in (1, 10, 11, 20, 103, 110)] == [
        "一",
        "十",
        "十一",
        "二十",
        "一百零三",
        "一百一十",
    ]
    assert all(to_int(to_chinese(n)) == n for n in range(1, 300))


def test_circled_markers() -> None:
    assert circled_to_int("①") == 1 and circled_to_int("⑳") == 20 and circled_to_int("1") is None
