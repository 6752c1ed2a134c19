"""Checks that run before any parser touches a file.

A hostile or broken file must fail fast with a sentence a user can act on, not with a pdfminer
traceback or an out-of-memory kill half-way through a batch. These guards look only at sizes and
the first bytes, so they are cheap enough to run on every file.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

from ingest.config import LimitsConfig
from kgqa.errors import IngestError

SNIFF_BYTES = 1024

_PDF_MAGIC = b"%PDF-"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BINARY_MAGICS: dict[bytes, str] = {
    b"\x89PNG\r\n\x1a\n": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"MZ": "a Windows executable",
    b"\x7fELF": "an ELF executable",
    b"\x1f\x8b": "a gzip archive",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
}


def human_bytes(size: float) -> str:
    """Format a byte count the way the error messages show it (``2.1 GB``, ``300 MB``)."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            if unit == "bytes":
                return f"{int(size)} bytes"
            text = f"{size:.1f}".rstrip("0").rstrip(".")
            return f"{text} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def check_size(path: Path, limits: LimitsConfig) -> int:
    """Refuse missing, empty and oversized files; returns the size in bytes.

    Raises:
        IngestError: the file is missing, not a regular file, empty, or above ``max_file_bytes``.
    """
    if not path.exists():
        raise IngestError(path, "file does not exist")
    if not path.is_file():
        raise IngestError(path, "not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise IngestError(path, "file is empty (0 bytes)")
    if size > limits.max_file_bytes:
        raise IngestError(
            path,
            f"file is {human_bytes(size)} (limit {human_bytes(limits.max_file_bytes)}); "
            "split it or raise limits.max_file_bytes",
        )
    return size


def read_head(path: Path, n: int = SNIFF_BYTES) -> bytes:
    """The first ``n`` bytes, for magic-number sniffing."""
    with path.open("rb") as fh:
        return fh.read(n)


def describe_magic(head: bytes) -> str:
    """Name what the first bytes look like, for 'not a PDF: starts with ...' style messages."""
    for magic, what in _BINARY_MAGICS.items():
        if head.startswith(magic):
            return f"starts with {head[: len(magic)]!r}, looks like {what}"
    if head.startswith(_ZIP_MAGIC):
        return "starts with b'PK', looks like a zip archive (DOCX/XLSX/...)"
    if head.startswith(_OLE_MAGIC):
        return "starts with an OLE header, looks like a legacy Office file (.doc/.xls) or an encrypted Office file"
    if head.startswith(_PDF_MAGIC):
        return "starts with b'%PDF-', looks like a PDF"
    return f"starts with {head[:8]!r}"


def expect_pdf(path: Path, head: bytes) -> None:
    """Raise unless the file carries the PDF header.

    The PDF spec lets junk precede ``%PDF-`` (some generators add a few bytes), so the header is
    searched in the first KB rather than required at offset 0, as PDF readers do.
    """
    if _PDF_MAGIC not in head:
        raise IngestError(path, f"not a PDF: {describe_magic(head)}")


def expect_zip(path: Path, head: bytes) -> None:
    """Raise unless the file is a zip container, naming what it looks like instead."""
    if head.startswith(_OLE_MAGIC):
        raise IngestError(
            path,
            "DOCX is not a valid zip archive: this is a legacy .doc or a password-protected Word file; "
            "open it in Word and save it as an unprotected .docx",
        )
    if not head.startswith(_ZIP_MAGIC):
        raise IngestError(path, f"DOCX is not a valid zip archive: {describe_magic(head)}")


def refuse_binary_text(path: Path, head: bytes) -> None:
    """Raise when a .txt/.md file is plainly a known binary format (image, archive, PDF...)."""
    for magic in (*_BINARY_MAGICS, _ZIP_MAGIC, _OLE_MAGIC, _PDF_MAGIC):
        if head.startswith(magic):
            raise IngestError(path, f"not a text file: {describe_magic(head)}")


def check_zip_expansion(path: Path, archive: zipfile.ZipFile, limits: LimitsConfig) -> None:
    """Refuse zip bombs from the central directory alone, before anything is decompressed.

    The declared sizes in ``infolist()`` cost nothing to read. A liar that declares small sizes is
    still caught later because python-docx reads members through ``zipfile``, which stops at the
    declared size and checks the CRC.

    Raises:
        IngestError: the archive would expand beyond ``max_docx_uncompressed_bytes``, one XML part
            beyond ``max_docx_xml_bytes``, or one member is compressed more than
            ``max_docx_compression_ratio`` to 1.
    """
    infos = archive.infolist()
    total = sum(info.file_size for info in infos)
    if total > limits.max_docx_uncompressed_bytes:
        raise IngestError(
            path,
            f"DOCX expands to {human_bytes(total)} (limit {human_bytes(limits.max_docx_uncompressed_bytes)}): "
            "refusing a possible zip bomb",
        )
    for info in infos:
        if info.filename.lower().endswith((".xml", ".rels")) and info.file_size > limits.max_docx_xml_bytes:
            raise IngestError(
                path,
                f"DOCX member {info.filename} expands to {human_bytes(info.file_size)} "
                f"(limit {human_bytes(limits.max_docx_xml_bytes)} per XML part; parsing it would take "
                f"~{human_bytes(info.file_size * 20)} of memory): refusing a possible zip bomb",
            )
        # Tiny members compress absurdly well (runs of spaces in XML); only judge big ones.
        if info.file_size < 1024 * 1024:
            continue
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_docx_compression_ratio:
            raise IngestError(
                path,
                f"DOCX member {info.filename} is compressed {ratio:.0f}:1 "
                f"(limit {limits.max_docx_compression_ratio:.0f}:1): refusing a possible zip bomb",
            )


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of the file bytes, streamed so a big file is never held in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()
