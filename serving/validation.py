"""Request validation shared by every transport, so gRPC and REST refuse the same inputs.

Each check names the field it refused (``question``, ``messages[2].content``), so a client with
a long request knows what to fix.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from kgqa.errors import InvalidArgument

# Control, surrogate, private-use and unassigned code points; newlines and tabs are text.
_NON_TEXT = frozenset({"Cc", "Cs", "Co", "Cn"})


def validate_text(text: str, field: str) -> str:
    """Raise InvalidArgument when ``text`` holds control or non-text characters."""
    if any(unicodedata.category(ch) in _NON_TEXT and ch not in "\n\t\r" for ch in text):
        raise InvalidArgument(f"{field} contains control or non-text characters; send plain text")
    return text


def validate_question(question: object, max_chars: int, field: str = "question") -> str:
    """Return the stripped question or raise InvalidArgument with the reason."""
    if not isinstance(question, str):
        raise InvalidArgument(f"{field} must be a string")
    text = question.strip()
    if not text:
        raise InvalidArgument(f"{field} is empty")
    if len(text) > max_chars:
        raise InvalidArgument(f"{field} is {len(text)} characters; the limit is {max_chars}")
    validate_text(text, field)
    if not any(ch.isalnum() for ch in text):
        raise InvalidArgument(f"{field} has no letters or digits")
    return text


def validate_k(k: object, default: int, maximum: int, field: str = "k") -> int:
    """A count (``k`` clauses, an audit page's ``limit``): ``default`` for None or 0. gRPC and HTTP
    type it, but a ``kgqa ask --batch`` line is raw JSON (``"k": "5"``, ``2.5``, ``true``)."""
    if k is None:
        return default
    if isinstance(k, bool) or not isinstance(k, int):
        raise InvalidArgument(f"{field} must be a whole number, got {_json_type(k)} {_shown(k)}")
    if k == 0:
        return default
    if k < 0 or k > maximum:
        raise InvalidArgument(f"{field} must be between 1 and {maximum}, got {k}")
    return k


def validate_chain_position(after: int, prev: str) -> tuple[int, str]:
    """Where a stepped chain check continues: record ``after`` and its hash (``""`` before the first)."""
    if after < 0:
        raise InvalidArgument(f"after must be 0 or more, got {after}")
    prev = prev.strip().lower()
    if (after == 0) != (prev == ""):
        raise InvalidArgument("prev must be empty at the start (after=0) and a record hash after it")
    if prev and (len(prev) != 64 or any(ch not in "0123456789abcdef" for ch in prev)):
        raise InvalidArgument("prev must be a record hash: 64 hexadecimal digits")
    return after, prev


def json_object(text: str, name: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object; InvalidArgument naming ``name`` when it is not JSON or
    not an object (a bare ``KeyError`` or ``list indices must be integers`` leaves the caller
    guessing). Integers of over 4,300 digits and deep nesting are refused the same way: they raise
    ValueError and RecursionError, not JSONDecodeError."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        reason = str(exc)
        raise InvalidArgument(f"{name} is not JSON: {reason[:120]}") from exc
    if not isinstance(value, dict):
        raise InvalidArgument(f"{name} must be a JSON object, not {_json_type(value)}")
    return value


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _json_type(value: object) -> str:
    """What JSON calls ``value``'s type (an error names ``array``, not Python's ``list``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _shown(value: object, limit: int = 60) -> str:
    """``value`` as JSON writes it, cut short: an error quotes what the client sent, not all of it."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "…"
