"""OCR of image-only PDF pages.

Two backends run the same PaddleOCR PP-OCR models: ``rapidocr`` ships them inside its wheel and
runs them with onnxruntime (offline, the default), ``paddleocr`` is used where that package and
its models are installed. Engines are expensive to build (model loading), so the pipeline builds
one lazily on the first image-only page and passes it to every parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from ingest.config import OcrConfig
from ingest.types import Line
from kgqa.errors import ConfigError

ImageLike = np.ndarray | Image.Image


@dataclass(frozen=True)
class OcrBox:
    """One recognised text region.

    Attributes:
        text: the recognised string.
        box: the region as four ``(x, y)`` corner points in image pixels (clockwise from top-left).
        score: recognition confidence, 0..1.
    """

    text: str
    box: tuple[tuple[float, float], ...]
    score: float

    @property
    def y0(self) -> float:
        return min(p[1] for p in self.box)

    @property
    def y1(self) -> float:
        return max(p[1] for p in self.box)

    @property
    def x0(self) -> float:
        return min(p[0] for p in self.box)

    @property
    def x1(self) -> float:
        return max(p[0] for p in self.box)


@runtime_checkable
class OcrEngine(Protocol):
    """Anything that turns a page image (RGB ndarray or PIL image) into text boxes."""

    def recognize(self, image: ImageLike) -> list[OcrBox]: ...


def _as_pil(image: ImageLike) -> Image.Image:
    # ndarrays are RGB by our convention; rapidocr would read a raw ndarray as OpenCV BGR.
    pil = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    return pil if pil.mode in ("RGB", "L") else pil.convert("RGB")


def _boxes(polys: Any, texts: Any, scores: Any) -> list[OcrBox]:
    if polys is None or texts is None:
        return []
    out: list[OcrBox] = []
    for poly, text, score in zip(polys, texts, scores, strict=False):
        points = tuple((float(x), float(y)) for x, y in np.asarray(poly).reshape(-1, 2))
        out.append(OcrBox(text=str(text), box=points, score=float(score)))
    return out


class RapidOcrEngine:
    """PP-OCR through rapidocr 3 and onnxruntime; the models are the ones bundled in the wheel.

    Args:
        params: extra rapidocr parameters (``{"Global.text_score": 0.5, ...}``), merged over ours.
    """

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        from rapidocr import RapidOCR

        merged: dict[str, Any] = {"Global.log_level": "warning"}
        merged.update(params or {})
        self._engine = RapidOCR(params=merged)

    def recognize(self, image: ImageLike) -> list[OcrBox]:
        result = self._engine(_as_pil(image))
        return _boxes(
            getattr(result, "boxes", None), getattr(result, "txts", None), getattr(result, "scores", None)
        )


class PaddleOcrEngine:
    """PP-OCR through the ``paddleocr`` package (2.x ``ocr()`` or 3.x ``predict()`` API).

    It is only built when the package is importable and its models are already on disk: this
    service runs without internet, and paddleocr would otherwise try to download them.

    Args:
        model_root: where paddleocr keeps its models; defaults to its own cache folders.
    """

    _DEFAULT_ROOTS = (Path.home() / ".paddlex" / "official_models", Path.home() / ".paddleocr")

    def __init__(self, model_root: Path | None = None) -> None:
        try:
            import paddleocr
        except ImportError as exc:
            raise ConfigError(
                "KGQA_INGEST__OCR__BACKEND=paddleocr but the paddleocr package is not installed: "
                "install kgqa[paddle] (and its models), or set KGQA_INGEST__OCR__BACKEND=rapidocr"
            ) from exc
        roots = [model_root] if model_root else list(self._DEFAULT_ROOTS)
        if not any(root.is_dir() and any(root.iterdir()) for root in roots):
            where = ", ".join(str(r) for r in roots)
            raise ConfigError(
                f"KGQA_INGEST__OCR__BACKEND=paddleocr but no PaddleOCR models were found in {where}; "
                "install kgqa[paddle] and copy the PP-OCR models there, or set KGQA_INGEST__OCR__BACKEND=rapidocr"
            )
        self._engine = paddleocr.PaddleOCR(lang="ch")

    def recognize(self, image: ImageLike) -> list[OcrBox]:
        array = np.asarray(_as_pil(image).convert("RGB"))[:, :, ::-1]  # paddle expects BGR
        if hasattr(self._engine, "predict"):  # paddleocr >= 3
            out: list[OcrBox] = []
            for res in self._engine.predict(array):
                out.extend(_boxes(res["rec_polys"], res["rec_texts"], res["rec_scores"]))
            return out
        result = self._engine.ocr(array, cls=False) or []  # paddleocr 2.x
        lines = (result[0] or []) if result else []
        return _boxes([b for b, _ in lines], [t for _, (t, _) in lines], [s for _, (_, s) in lines])


def make_ocr_engine(config: OcrConfig) -> OcrEngine:
    """Build the configured backend.

    Raises:
        ConfigError: the backend is unknown, or paddleocr (or its models) is missing.
    """
    if config.backend == "rapidocr":
        return RapidOcrEngine({"Global.text_score": config.min_confidence})
    if config.backend == "paddleocr":
        return PaddleOcrEngine()
    raise ConfigError(f"unknown OCR backend {config.backend!r}; use 'rapidocr' or 'paddleocr'")


def _is_latin(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def boxes_to_lines(boxes: list[OcrBox], page_height: float, min_confidence: float) -> list[Line]:
    """Group OCR boxes into visual lines, top to bottom, each read left to right.

    Two boxes share a line when their vertical extents overlap by more than half of the shorter
    one (a footnote marker in the margin joins its line; the next line down does not). Boxes are
    joined with a space only where the gap is wide or both sides are Latin, so a Chinese line the
    detector split in two comes back whole.

    Args:
        boxes: the engine's output.
        page_height: image height in pixels, to make ``Line.top`` relative (0..1).
        min_confidence: boxes scoring below this are dropped as noise.
    """
    kept = sorted((b for b in boxes if b.score >= min_confidence and b.text.strip()), key=lambda b: b.y0)
    groups: list[list[OcrBox]] = []
    for box in kept:
        for group in groups[-3:]:
            top, bottom = min(b.y0 for b in group), max(b.y1 for b in group)
            overlap = min(bottom, box.y1) - max(top, box.y0)
            if overlap > 0.5 * min(bottom - top, box.y1 - box.y0):
                group.append(box)
                break
        else:
            groups.append([box])
    lines: list[Line] = []
    for group in groups:
        group.sort(key=lambda b: b.x0)
        height = max(b.y1 - b.y0 for b in group)
        text = group[0].text.strip()
        for prev, box in zip(group, group[1:], strict=False):
            piece = box.text.strip()
            wide_gap = box.x0 - prev.x1 > height
            sep = " " if wide_gap or (_is_latin(text[-1]) and _is_latin(piece[0])) else ""
            text += sep + piece
        lines.append(Line(text=text, top=min(b.y0 for b in group) / page_height))
    lines.sort(key=lambda line: line.top or 0.0)
    return lines
