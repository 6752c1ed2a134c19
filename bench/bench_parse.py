"""Parsing throughput (text-layer and OCR pages per second) and what hostile files cost.

Usage::

    python bench/bench_parse.py [--pages 100] [--ocr-pages 2] [--dpi 200] [--bombs] [--json]

The text-layer figure comes from a generated manual (running header, ~800 Chinese characters of
body text per page, a ruled table every fifth page, page-number footer). The OCR figure comes
from the first pages of the corpus scanned book (``KGQA_SHARED_DIR``, default ../shared), read
with the bundled rapidocr engine; engine construction is timed separately because the pipeline
pays it once per run, not per page. It is printed beside the OCR budgets (``LimitsConfig``), so
that the number of pages a budget buys on this machine can be read off.

``--bombs`` runs the hostile files of ``scripts/hostile_files.py`` (a DOCX bomb under the old
caps, a 14,400 pt poster page, a 1,999-page scan) through the worker process with the default
limits, and once more with the static checks relaxed so that the memory cap has to stop them,
printing each outcome, its seconds and the worker's peak resident memory for that file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest.config import IngestConfig, LimitsConfig, OcrConfig  # noqa: E402
from ingest.parsers import parse_file  # noqa: E402
from ingest.parsers.ocr import make_ocr_engine  # noqa: E402
from ingest.worker import IsolatedPipeline  # noqa: E402
from kgqa.errors import IngestError  # noqa: E402

WQY = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
SENTENCE = "报销人应当在费用发生后三十日内提交单据，经部门负责人审核后交财务部门复核。"


def make_manual(path: Path, pages: int) -> Path:
    """Write an N-page text-layer manual with reportlab (Chinese font when installed)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas
    from reportlab.platypus import Table, TableStyle

    font = "Helvetica"
    if WQY.exists():
        pdfmetrics.registerFont(TTFont("wqy", str(WQY), subfontIndex=0))
        font = "wqy"
    width, height = A4
    c = canvas.Canvas(str(path), pagesize=A4)
    for n in range(1, pages + 1):
        c.setFont(font, 9)
        c.drawString(72, height - 40, "星河集团财务管理手册")
        c.setFont(font, 11)
        y = height - 90
        for row in range(22):
            c.drawString(72, y, f"第{n * 100 + row}条 " + SENTENCE[: 30 - row % 5])
            y -= 18
        if n % 5 == 0:
            table = Table(
                [["项目", "审批人", "限额"], ["差旅费", "部门经理", "5"], ["采购款", "财务总监", "200"]]
            )
            table.setStyle(
                TableStyle([("FONT", (0, 0), (-1, -1), font, 10), ("GRID", (0, 0), (-1, -1), 0.5, "black")])
            )
            _, h = table.wrapOn(c, width, height)
            table.drawOn(c, 72, y - h - 10)
        c.setFont(font, 9)
        c.drawCentredString(width / 2, 30, f"- {n} -")
        c.showPage()
    c.save()
    return path


def bench_text(pages: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = make_manual(Path(tmp) / "manual.pdf", pages)
        started = time.perf_counter()
        doc = parse_file(path, IngestConfig())
        seconds = time.perf_counter() - started
    chars = sum(len(line.text) for p in doc.pages for line in p.lines)
    return {
        "pages": len(doc.pages),
        "seconds": seconds,
        "pages_per_s": len(doc.pages) / seconds,
        "chars": chars,
    }


def bench_ocr(pages: int, dpi: int) -> dict[str, float]:
    import pypdfium2 as pdfium

    shared = Path(os.environ.get("KGQA_SHARED_DIR", REPO.parent / "shared"))
    source = shared / "corpus" / "pdf" / "scanned-book-8p.pdf"
    if not source.exists():
        raise SystemExit(f"scanned corpus PDF not found at {source} (set KGQA_SHARED_DIR)")
    # budgets off: this measures the speed that the budgets are set against
    unbounded = LimitsConfig(ocr_page_budget_s=float("inf"), ocr_file_budget_s=float("inf"))
    config = IngestConfig(ocr=OcrConfig(dpi=dpi), limits=unbounded)
    started = time.perf_counter()
    engine = make_ocr_engine(config.ocr)
    init_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        subset = pdfium.PdfDocument.new()
        subset.import_pages(pdfium.PdfDocument(str(source)), list(range(min(pages, 8))))
        path = Path(tmp) / "scan.pdf"
        subset.save(str(path))
        started = time.perf_counter()
        doc = parse_file(path, config, ocr=engine)
        seconds = time.perf_counter() - started
    chars = sum(len(line.text) for p in doc.pages for line in p.lines)
    return {
        "pages": doc.ocr_pages,
        "seconds": seconds,
        "pages_per_s": doc.ocr_pages / seconds,
        "s_per_page": seconds / doc.ocr_pages,
        "engine_init_s": init_s,
        "chars": chars,
        "dpi": dpi,
    }


def bench_bombs() -> list[dict[str, object]]:
    """Outcome, seconds and peak worker memory of each hostile file, default and relaxed limits."""
    from scripts.hostile_files import make_docx_bomb, make_long_scan, make_poster_pdf

    defaults = LimitsConfig()
    relaxed = {
        # past the XML cap it fits under the memory cap and grinds: the deadline (120 s here) stops it
        "docx-bomb": LimitsConfig(max_docx_xml_bytes=10**9, parse_timeout_s=120),
        "poster-14400pt": LimitsConfig(max_page_pixels=10**10),
    }
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "docx-bomb": make_docx_bomb(Path(tmp) / "bomb.docx", xml_mb=290),
            "poster-14400pt": make_poster_pdf(Path(tmp) / "poster.pdf"),
            "scan-1999p": make_long_scan(Path(tmp) / "scan.pdf", pages=1999),
        }
        runs = [(name, "default", defaults) for name in files]
        runs += [(name, "static checks off", limits) for name, limits in relaxed.items()]
        for name, mode, limits in runs:
            started = time.perf_counter()
            with IsolatedPipeline(IngestConfig(limits=limits)) as pipeline:
                try:
                    tree = pipeline.process(files[name])
                    outcome = "parsed" + (f" ({tree.warnings[0]})" if tree.warnings else "")
                except IngestError as exc:
                    outcome = exc.reason
                stats = pipeline.last_stats
            rows.append(
                {
                    "file": name,
                    "limits": mode,
                    "size_kb": round(files[name].stat().st_size / 1024),
                    "seconds": round(time.perf_counter() - started, 1),
                    "peak_mb": round(stats.peak_rss_mb) if stats and stats.peak_rss_mb else None,
                    "outcome": outcome,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=100, help="pages of the generated text-layer manual")
    parser.add_argument("--ocr-pages", type=int, default=2, help="scanned pages to OCR (at most 8; 0 skips)")
    parser.add_argument("--dpi", type=int, default=OcrConfig().dpi, help="OCR rendering resolution")
    parser.add_argument("--bombs", action="store_true", help="run the hostile files through the worker")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    limits = LimitsConfig()
    results: dict[str, object] = {"text_layer": bench_text(args.pages), "cpus": os.cpu_count()}
    if args.ocr_pages > 0:
        results["ocr"] = bench_ocr(args.ocr_pages, args.dpi)
        results["ocr"]["file_budget_s"] = limits.ocr_file_budget_s
        results["ocr"]["page_budget_s"] = limits.ocr_page_budget_s
        results["ocr"]["pages_per_file_budget"] = int(
            limits.ocr_file_budget_s * results["ocr"]["pages_per_s"]
        )
    if args.bombs:
        results["bombs"] = bench_bombs()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'kind':<12}{'pages':>7}{'seconds':>10}{'pages/s':>10}{'s/page':>9}")
    for kind in ("text_layer", "ocr"):
        if kind in results:
            r = results[kind]
            print(
                f"{kind:<12}{r['pages']:>7}{r['seconds']:>10.2f}{r['pages_per_s']:>10.2f}{r['seconds'] / r['pages']:>9.3f}"
            )
    if "ocr" in results:
        ocr = results["ocr"]
        print(f"OCR engine init {ocr['engine_init_s']:.2f} s (once per run), dpi {args.dpi}")
        print(
            f"OCR budget {ocr['file_budget_s']:g} s per file, {ocr['page_budget_s']:g} s per page: "
            f"~{ocr['pages_per_file_budget']} scanned pages per file on this machine"
        )
    for row in results.get("bombs", []):
        print(
            f"{row['file']:<16}{row['limits']:<19}{row['size_kb']:>7} KB{row['seconds']:>7} s"
            f"{row['peak_mb'] or '-':>7} MB  {row['outcome']}"
        )


if __name__ == "__main__":
    main()
