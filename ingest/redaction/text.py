"""A same-length ASCII view of a text, so that one set of patterns finds every spelling of a number.

Manuals typed on Chinese keyboards mix full-width digits (１３８…), full-width colons and dashes,
and ideographic spaces into numbers. Mapping each such character to one ASCII character keeps
every offset valid, so a match found in the view is cut out of the original text unchanged.
"""

from __future__ import annotations

_FULL_WIDTH = {chr(0xFF01 + i): chr(0x21 + i) for i in range(94)}  # ！..～ -> !..~
_OTHER = {
    "\u3000": " ",  # ideographic space
    "\u00a0": " ",
    "—": "-",
    "–": "-",
    "―": "-",
    "‐": "-",
    "‑": "-",
    "‒": "-",
    "−": "-",
}
_VIEW = str.maketrans({**_FULL_WIDTH, **_OTHER})

# What OCR and hurried typists put where a digit belongs (O for 0, l or I for 1). Only applied to
# values a label has already declared to be numbers: in running text these are letters.
_CONFUSED_DIGITS = str.maketrans({"O": "0", "o": "0", "l": "1", "I": "1"})


def ascii_view(text: str) -> str:
    """``text`` with full-width forms and dash variants replaced by ASCII, offsets unchanged."""
    return text.translate(_VIEW)


def as_digits(value: str) -> str:
    """A labelled value with OCR-confused characters read as the digits they stand for."""
    return value.translate(_CONFUSED_DIGITS)
