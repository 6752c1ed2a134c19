"""Cutting long clauses into retrieval-sized chunks at Chinese sentence ends.

Only clauses longer than ``ChunkConfig.max_chars`` are chunked; a shorter clause is already a
good retrieval unit and gets no chunks (an empty list), so the graph does not store every short
clause twice. Retrieval therefore indexes clauses without chunks plus the chunks of long ones.

The cut points follow the structure of Chinese prose, from strongest to weakest: paragraph
breaks, sentence ends (。！？), then semicolons (；). A sentence is never cut while it fits within
``max_chars``; only a single sentence longer than that is cut at commas (，), enumeration commas
(、) and, as a very last resort, between characters. The pieces are exact substrings in order, so
joining the chunks of a clause gives back its text, character for character.
"""

from __future__ import annotations

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingest.config import ChunkConfig
from ingest.ids import chunk_id
from ingest.types import Chunk

SENTENCE_SEPARATORS = [r"\n{2,}", r"\n", r"[。！？!?]+[”’」』）)]*", r"[；;]"]
"""Regexes tried in order: paragraphs, sentence ends (with a closing quote that follows), semicolons."""

PHRASE_SEPARATORS = [r"[，,]", r"[、]", ""]
"""Last-resort cut points inside one over-long sentence; ``""`` cuts between characters."""


def _splitter(chunk_size: int, separators: list[str]) -> RecursiveCharacterTextSplitter:
    # keep_separator="end" leaves 。 at the end of its sentence; no stripping keeps the pieces
    # exact substrings, so that joining the chunks gives back the clause text.
    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=0,
        separators=separators,
        keep_separator="end",
        is_separator_regex=True,
        strip_whitespace=False,
    )


def _merge_small(pieces: list[str], min_chars: int, max_chars: int) -> list[str]:
    """Fold pieces shorter than ``min_chars`` into a neighbour while the result fits ``max_chars``.

    The previous neighbour is preferred: the merged chunk then still ends where the short piece
    ended, on a sentence end.
    """
    merged: list[str] = []
    for piece in pieces:
        small = merged and (len(piece) < min_chars or len(merged[-1]) < min_chars)
        if small and len(merged[-1]) + len(piece) <= max_chars:
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged


def split_text(text: str, config: ChunkConfig) -> list[str]:
    """Cut ``text`` into pieces of about ``target_chars`` at the strongest cut points available.

    Returns:
        The pieces in order; ``"".join(pieces) == text``. No piece exceeds ``max_chars``.
    """
    if not text:
        return []
    target = max(1, min(config.target_chars, config.max_chars))
    sentences = _splitter(target, SENTENCE_SEPARATORS).split_text(text)
    phrase_splitter = _splitter(target, PHRASE_SEPARATORS)
    pieces: list[str] = []
    for piece in sentences:
        if len(piece) > config.max_chars:
            pieces.extend(phrase_splitter.split_text(piece))
        else:
            pieces.append(piece)
    return _merge_small(pieces, config.min_chars, config.max_chars)


def chunk_text(clause_id: str, text: str, config: ChunkConfig) -> list[Chunk]:
    """The chunks of one clause: empty when the clause fits ``max_chars``, else two or more.

    Args:
        clause_id: the id every chunk keeps, so a retrieved chunk cites its clause.
        text: the full clause text.
        config: target/min/max sizes in characters.

    Returns:
        Chunks numbered from 0 in text order, ids from :func:`ingest.ids.chunk_id`.
    """
    if len(text) <= config.max_chars:
        return []
    return [
        Chunk(chunk_id=chunk_id(clause_id, n), clause_id=clause_id, ord=n, text=piece)
        for n, piece in enumerate(split_text(text, config))
    ]
