"""Running headers and footers, found by repetition rather than by a list of known phrases.

A line that sits in the top or bottom band of the page and looks the same (digits masked, so
"第 3 页" and "第 4 页" agree) on many pages is page furniture, whatever it says. Clustering uses
rapidfuzz so small OCR or layout differences still group together.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rapidfuzz import fuzz

from ingest.config import CleanConfig
from ingest.types import Line, Page

Zone = Literal["top", "bottom"]
Position = tuple[int, int]
"""(index of the page in the document, index of the item on that page)."""

_DIGITS = re.compile(r"[0-9０-９]+")
_SPACE = re.compile(r"\s+")


@dataclass
class _Cluster:
    zone: Zone
    key: str
    positions: list[Position] = field(default_factory=list)
    pages: set[int] = field(default_factory=set)


def band_zone(line: Line, band: float) -> Zone | None:
    """Which band a positioned line sits in, or None for body lines and flowing formats."""
    if line.top is None:
        return None
    if line.top < band:
        return "top"
    if line.top > 1.0 - band:
        return "bottom"
    return None


def normalise(text: str) -> str:
    """The comparison key of a band line: whitespace removed, every digit run masked as ``#``."""
    return _DIGITS.sub("#", _SPACE.sub("", text))


def find_running_lines(pages: Sequence[Page], config: CleanConfig) -> set[Position]:
    """Positions of the lines that are running headers or footers.

    A cluster of similar band lines is running when it appears on at least
    ``max(min_repeat_pages, ceil(min_repeat_ratio * pages))`` pages. Books alternate headers on
    odd and even pages (title left, chapter right); such a cluster lives on one parity only, so
    it is measured against the pages of that parity instead.

    Args:
        pages: the document's pages; flowing formats (no ``top``) never yield anything.
        config: band height, repetition thresholds and the similarity cut-off.

    Returns:
        The (page index, item index) of every line to remove.
    """
    clusters: list[_Cluster] = []
    for page_index, page in enumerate(pages):
        for item_index, item in enumerate(page.items):
            if not isinstance(item, Line):
                continue
            zone = band_zone(item, config.band)
            key = normalise(item.text)
            if zone is None or not key:
                continue
            cluster = _closest(clusters, zone, key, config.similarity)
            if cluster is None:
                cluster = _Cluster(zone, key)
                clusters.append(cluster)
            cluster.positions.append((page_index, item_index))
            cluster.pages.add(page.number)

    numbers = [p.number for p in pages]
    running: set[Position] = set()
    for cluster in clusters:
        if _is_running(cluster.pages, numbers, config):
            running.update(cluster.positions)
    return running


def _closest(clusters: list[_Cluster], zone: Zone, key: str, similarity: float) -> _Cluster | None:
    best: _Cluster | None = None
    best_score = similarity
    for cluster in clusters:
        if cluster.zone != zone:
            continue
        score = fuzz.ratio(cluster.key, key, score_cutoff=best_score)
        if score >= best_score:
            best, best_score = cluster, score
    return best


def _needed(pages: int, config: CleanConfig) -> int:
    return max(config.min_repeat_pages, math.ceil(config.min_repeat_ratio * pages - 1e-9))


def _is_running(seen: set[int], numbers: list[int], config: CleanConfig) -> bool:
    if len(seen) >= _needed(len(numbers), config):
        return True
    parities = {n % 2 for n in seen}
    if len(parities) != 1:
        return False
    parity = parities.pop()
    same_parity = sum(1 for n in numbers if n % 2 == parity)
    return len(seen) >= _needed(same_parity, config)
