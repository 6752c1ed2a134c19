"""The request checks every transport shares (serving/validation.py)."""

from __future__ import annotations

import pytest

from kgqa.errors import InvalidArgument
from serving.validation import json_object, validate_k, validate_question


@pytest.mark.parametrize(("k", "expected"), [(None, 5), (0, 5), (1, 1), (20, 20)])
def test_k_defaults_and_bounds(k, expected):
    assert validate_k(k, 5, 20) == expected


@pytest.mark.parametrize("k", [-1, 21])
def test_k_out_of_range_names_the_range(k):
    with pytest.raises(InvalidArgument, match=f"between 1 and 20, got {k}"):
        validate_k(k, 5, 20)


@pytest.mark.parametrize(
    ("k", "shown"),
    [("5", 'a string "5"'), (2.5, "a number 2.5"), (True, "a boolean true"), ([3], "an array [3]")],
)
def test_k_of_another_type_is_refused_with_its_value(k, shown):
    """A `kgqa ask --batch` line is raw JSON: "k": "5" raised a bare TypeError from `<`."""
    with pytest.raises(InvalidArgument) as refused:
        validate_k(k, 5, 20)
    assert str(refused.value) == f"k must be a whole number, got {shown}"


def test_a_count_error_names_its_field_and_quotes_the_value_short():
    with pytest.raises(InvalidArgument) as refused:
        validate_k("9" * 500, 50, 1000, "limit")
    assert str(refused.value).startswith('limit must be a whole number, got a string "999')
    assert len(str(refused.value)) < 120


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        (123, "must be a string"),
        ("  ", "is empty"),
        ("？！", "no letters or digits"),
        ("问" * 11, "11 characters"),
    ],
)
def test_question_refusals_name_the_reason(question, reason):
    with pytest.raises(InvalidArgument, match=reason):
        validate_question(question, 10)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 100_000, "line 3 is not JSON: maximum recursion"),
        ('{"k": 1' + "0" * 5000 + "}", "line 3 is not JSON"),
        ("{bad", "line 3 is not JSON"),
        ('["a"]', "line 3 must be a JSON object, not an array"),
        ("7", "not a number"),
    ],
)
def test_json_object_names_the_input_and_the_reason(text, reason):
    with pytest.raises(InvalidArgument, match=reason):
        json_object(text, "line 3")
    assert json_object('{"id": "a"}', "line 3") == {"id": "a"}
