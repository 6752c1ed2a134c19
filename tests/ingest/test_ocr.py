"""OCR of image-only pages: box grouping, the bundled rapidocr engine, and the PDF dispatch."""

from __future__ import annotations

import importlib.util
import re
import socket
from pathlib import Path

import pdfplumber
import pypdfium2 as pdfium
import pytest

from ingest.config import IngestConfig, OcrConfig
from ingest.parsers import parse_file
from ingest.parsers.ocr import OcrBox, RapidOcrEngine, boxes_to_lines, make_ocr_engine
from ingest.parsers.pdf import needs_ocr
from kgqa.errors import ConfigError


def _box(text: str, x0: float, y0: float, x1: float, y1: float, score: float = 0.99) -> OcrBox:
    return OcrBox(text=text, box=((x0, y0), (x1, y0), (x1, y1), (x0, y1)), score=score)


def test_boxes_group_into_lines_left_to_right() -> None:
    boxes = [
        _box("第二行", 100, 212, 400, 250),
        _box("物的有用性", 300, 100, 700, 140),
        _box("14(1)", 10, 104, 80, 138),  # margin note on the first line, wide gap
        _box("使物成为", 705, 102, 900, 141),  # same line, detector split it: no space in Chinese
        _box("噪声", 100, 300, 200, 340, score=0.2),
        _box("worth", 100, 400, 200, 440),
        _box("value", 205, 400, 300, 440),
    ]
    lines = boxes_to_lines(boxes, page_height=1000, min_confidence=0.5)
    assert [line.text for line in lines] == ["14(1) 物的有用性使物成为", "第二行", "worth value"]
    assert [line.top for line in lines] == pytest.approx([0.1, 0.212, 0.4])


@pytest.fixture(scope="module")
def engine() -> RapidOcrEngine:
    return RapidOcrEngine()


def _subset(src: Path, dst: Path, indices: list[int]) -> Path:
    out = pdfium.PdfDocument.new()
    out.import_pages(pdfium.PdfDocument(str(src)), indices)
    out.save(str(dst))
    return dst


def test_rapidocr_builds_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("rapidocr tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert isinstance(make_ocr_engine(OcrConfig(backend="rapidocr")), RapidOcrEngine)


def test_scanned_page_is_read_as_chinese(corpus_dir: Path, tmp_path: Path, engine: RapidOcrEngine) -> None:
    path = _subset(corpus_dir / "pdf" / "scanned-book-8p.pdf", tmp_path / "scan-p1.pdf", [0])
    doc = parse_file(path, IngestConfig(), ocr=engine)
    assert doc.ocr_pages == 1 and doc.pages[0].ocr and doc.pages[0].number == 1
    lines = doc.pages[0].lines
    text = "".join(line.text for line in lines)
    assert "使用价值" in text and "交换价值" in text
    assert max(len(run) for run in re.findall(r"[\u4e00-\u9fff]+", text)) >= 15
    tops = [line.top for line in lines]
    assert tops == sorted(tops) and 0 < tops[0] < 0.2 and tops[-1] < 1
    assert len(lines) >= 20


class _RecordingEngine:
    """Counts calls and image sizes; returns one box. Stands in for OCR where OCR is not under test."""

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def recognize(self, image) -> list[OcrBox]:
        self.sizes.append(image.size)
        return [_box("扫描页", 10, 10, 100, 40)]


def test_every_image_only_page_goes_to_ocr_at_configured_dpi(corpus_dir: Path) -> None:
    recorder = _RecordingEngine()
    config = IngestConfig(ocr=OcrConfig(dpi=100))
    doc = parse_file(corpus_dir / "pdf" / "scanned-book-8p.pdf", config, ocr=recorder)
    assert doc.ocr_pages == 8 and len(recorder.sizes) == 8
    assert [p.number for p in doc.pages] == list(range(1, 9))
    width, height = recorder.sizes[0]
    assert (width, height) == pytest.approx((1225.5 * 100 / 72, 1800 * 100 / 72), abs=1)
    assert doc.pages[0].lines[0].text == "扫描页"


def test_text_layer_pages_do_not_need_ocr(corpus_dir: Path) -> None:
    config = OcrConfig()
    with pdfplumber.open(corpus_dir / "pdf" / "broker-report-text-layer.pdf") as pdf:
        assert not any(needs_ocr(page, config) for page in pdf.pages)
    with pdfplumber.open(corpus_dir / "pdf" / "scanned-book-8p.pdf") as pdf:
        assert all(needs_ocr(page, config) for page in pdf.pages)


@pytest.mark.skipif(importlib.util.find_spec("paddleocr") is not None, reason="paddleocr is installed")
def test_paddleocr_missing_says_what_to_do() -> None:
    with pytest.raises(ConfigError, match=r"kgqa\[paddle\].*KGQA_INGEST__OCR__BACKEND=rapidocr"):
        make_ocr_engine(OcrConfig(backend="paddleocr"))
