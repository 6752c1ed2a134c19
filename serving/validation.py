"""Request validation shared by every transport, so gRPC and REST refuse the same inputs."""

from __future__ import annotations

import unicodedata

from kgqa.errors import InvalidArgument


def validate_question(question: object, max_chars: int) -> str:
    """Return the stripped question or raise InvalidArgument with the reason."""
    if not isinstance(question, str):
        raise InvalidArgument("question must be a string")
    text = question.strip()
    if not text:
        raise InvalidArgument("question is empty")
    if len(text) > max_chars:
        raise InvalidArgument(f"question is {len(text)} characters; the limit is {max_chars}")
    bad = sum(1 for ch in text if unicodedata.category(ch) in {"Cc", "Cs", "Co", "Cn"} and ch not in "\n\t")
    if bad:
        raise InvalidArgument("question contains control or non-text characters; send plain text")
    if not any(ch.isalnum() for ch in text):
        raise InvalidArgument("question has no letters or digits")
    return text


def validate_k(k: int | None, default: int, maximum: int) -> int:
    if k is None or k == 0:
        return default
    if k < 0 or k > maximum:
        raise InvalidArgument(f"k must be between 1 and {maximum}, got {k}")
    return k
