"""Hostile and broken files fail with an IngestError naming the file and a reason a user can act on."""

from __future__ import annotations

import random
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from ingest.config import IngestConfig
from ingest.parsers import parse_file
from kgqa.errors import IngestError, UnsupportedFormat


def _fails(path: Path, *reason_parts: str) -> IngestError:
    with pytest.raises(IngestError) as err:
        parse_file(path, IngestConfig())
    message = str(err.value)
    assert path.name in message
    for part in reason_parts:
        assert part in err.value.reason, f"{part!r} not in {err.value.reason!r}"
    return err.value


def _text_pdf(path: Path, pages: int, password: str | None = None, lines: int = 40) -> Path:
    from reportlab.lib import pdfencrypt
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    encrypt = (
        pdfencrypt.StandardEncryption(password, ownerPassword="owner", strength=128) if password else None
    )
    c = canvas.Canvas(str(path), pagesize=A4, encrypt=encrypt)
    for n in range(1, pages + 1):
        c.setFont("Helvetica", 11)
        c.drawString(72, 800, "Finance manual - chapter overview")
        for row in range(lines):
            c.drawString(
                72, 760 - row * 17, f"Article {n}.{row}: the approver signs the voucher within 30 days."
            )
        c.drawCentredString(297, 30, f"- {n} -")
        c.showPage()
    c.save()
    return path


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark for this process (Linux >= 4.0); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


@pytest.mark.parametrize("name", ["empty.pdf", "empty.docx", "empty.txt", "empty.md"])
def test_zero_byte_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.touch()
    _fails(path, "file is empty (0 bytes)")


def test_truncated_pdf(corpus_dir: Path, tmp_path: Path) -> None:
    data = (corpus_dir / "pdf" / "broker-report-text-layer.pdf").read_bytes()
    path = tmp_path / "cut-short.pdf"
    path.write_bytes(data[: int(len(data) * 0.3)])
    _fails(path, "truncated or damaged PDF")


def test_encrypted_pdf(tmp_path: Path) -> None:
    path = _text_pdf(tmp_path / "locked.pdf", pages=1, password="secret")
    _fails(path, "PDF is encrypted; remove the password and re-ingest")


def test_owner_password_only_pdf_is_readable(tmp_path: Path) -> None:
    # Permissions-only encryption (empty user password) opens in every viewer; so must it here.
    from reportlab.lib import pdfencrypt
    from reportlab.pdfgen import canvas

    path = tmp_path / "print-protected.pdf"
    c = canvas.Canvas(str(path), encrypt=pdfencrypt.StandardEncryption("", ownerPassword="owner"))
    c.drawString(72, 700, "Article 1: readable despite the owner password.")
    c.save()
    doc = parse_file(path, IngestConfig())
    assert doc.pages[0].lines[0].text == "Article 1: readable despite the owner password."


def test_random_bytes_named_pdf(tmp_path: Path) -> None:
    path = tmp_path / "noise.pdf"
    path.write_bytes(random.Random(7).randbytes(4096))
    _fails(path, "not a PDF: starts with")


def test_png_named_pdf(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "scan.pdf"
    Image.new("RGB", (20, 20), "white").save(path, format="PNG")
    _fails(path, "not a PDF: starts with b'\\x89PNG", "PNG image")


def test_docx_named_pdf(corpus_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "renamed.pdf"
    path.write_bytes((corpus_dir / "docx" / "mixed-tables.docx").read_bytes())
    _fails(path, "not a PDF: starts with b'PK'")


def test_docx_that_is_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    path.write_text("这不是一个 Word 文件", encoding="utf-8")
    _fails(path, "DOCX is not a valid zip archive")


def test_docx_with_broken_zip_directory(corpus_dir: Path, tmp_path: Path) -> None:
    data = (corpus_dir / "docx" / "mixed-tables.docx").read_bytes()
    path = tmp_path / "half.docx"
    path.write_bytes(data[: len(data) // 2])  # local headers intact, central directory gone
    _fails(path, "DOCX is not a valid zip archive")


def test_zip_that_is_not_a_word_document(tmp_path: Path) -> None:
    path = tmp_path / "book.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
    _fails(path, "DOCX has no word/document.xml")


def test_docx_zip_bomb_is_refused_before_extraction(tmp_path: Path) -> None:
    path = tmp_path / "bomb.docx"
    zeros = bytes(8 * 1024 * 1024)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("word/document.xml", "w", force_zip64=True) as member:
            for _ in range(50):  # 400 MB of zeros, streamed
                member.write(zeros)
    assert path.stat().st_size < 5 * 1024 * 1024
    tracemalloc.start()
    started = time.perf_counter()
    try:
        _fails(path, "DOCX expands to 400 MB (limit 300 MB): refusing a possible zip bomb")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 2 and peak < 20 * 1024 * 1024  # nothing was inflated


def test_docx_high_compression_ratio_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dense.docx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("word/document.xml", bytes(20 * 1024 * 1024))
    _fails(path, "DOCX member word/document.xml is compressed", "refusing a possible zip bomb")


@pytest.mark.parametrize("name", ["budget.xlsx", "setup.exe", "README"])
def test_unknown_extension(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"MZ\x90\x00")
    with pytest.raises(UnsupportedFormat) as err:
        parse_file(path, IngestConfig())
    assert name in str(err.value) and "unsupported file type" in err.value.reason


def test_undecodable_text(tmp_path: Path) -> None:
    path = tmp_path / "garbled.txt"
    path.write_bytes(random.Random(3).randbytes(2048))
    error = _fails(path, "cannot decode text: tried UTF-8", "GB18030")
    assert "save the file as UTF-8" in error.reason


def test_image_named_markdown(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "notes.md"
    Image.new("RGB", (8, 8)).save(path, format="PNG")
    _fails(path, "not a text file", "PNG image")


@pytest.fixture(scope="module")
def long_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Short pages: the point is the page count (caches piling up per page), not pdfminer's
    # per-character cost, which would make this test take minutes on two cores.
    return _text_pdf(tmp_path_factory.mktemp("long") / "manual-500p.pdf", pages=500, lines=4)


def test_500_page_pdf_parses_in_bounded_memory(long_pdf: Path) -> None:
    if not _reset_peak_rss():
        pytest.skip("peak RSS cannot be reset on this platform (/proc/self/clear_refs)")
    before = _status_kb("VmRSS")
    doc = parse_file(long_pdf, IngestConfig())
    growth_mb = (_status_kb("VmHWM") - before) / 1024
    assert len(doc.pages) == 500 and doc.ocr_pages == 0
    assert doc.pages[499].lines[-1].text == "- 500 -"
    assert sum(len(p.lines) for p in doc.pages) == 500 * 6
    # Measured: ~3 MB with per-page cache flushing, ~290 MB when pages are never closed.
    assert growth_mb < 100, f"peak RSS grew by {growth_mb:.0f} MB"
