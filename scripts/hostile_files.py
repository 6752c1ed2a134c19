"""Files that stay within every size limit and still try to exhaust the machine (issue 13).

Each is small on disk and generated on demand (tests and ``bench/bench_parse.py`` build them in a
temporary folder; nothing is committed):

- a DOCX whose ``word/document.xml`` inflates to hundreds of MB, compressed ~130:1 (under the
  200:1 ratio check) and under the 300 MB total cap: python-docx parsed 290 MB of it into 6.2 GB;
- a PDF whose single page is 14,400 pt square (200 inches, the largest page PDF allows) with an
  image on it, so it goes to OCR: rendered at 200 dpi it is a 40,000 px square bitmap;
- a scanned PDF of N image-only pages sharing one image (a 1,999-page scan is a few hundred KB).
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="word/document.xml"/></Relationships>'
)


def make_docx_bomb(path: Path, xml_mb: int = 150, seed: int = 13) -> Path:
    """A valid DOCX whose document.xml inflates to ``xml_mb`` MB of short paragraphs.

    One random digit per paragraph keeps deflate from collapsing the repetition: the ratio lands
    near 130:1, like the 2.1 MB -> 290 MB file of the issue, below the 200:1 bomb check.
    """
    rng = random.Random(seed)
    target = xml_mb * 1024 * 1024
    head = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{_W}"><w:body>'
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _RELS)
        with zf.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(head.encode())
            written = len(head)
            while written < target:
                chunk = "".join(
                    f"<w:p><w:r><w:t>第{rng.randrange(10)}条 报销应当取得合法票据。</w:t></w:r></w:p>"
                    for _ in range(20_000)
                ).encode()
                member.write(chunk)
                written += len(chunk)
            member.write(b"</w:body></w:document>")
    return path


def _page_image(width: int = 1240, height: int = 1754) -> bytes:
    """A greyscale A4-at-150-dpi 'scan' with a few dark bars, as JPEG bytes."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for row in range(6):
        top = 200 + row * 120
        draw.rectangle((150, top, 150 + 700 + 40 * row, top + 30), fill=40)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=60)
    return buffer.getvalue()


def make_poster_pdf(path: Path, points: float = 14_400.0) -> Path:
    """A one-page PDF, ``points`` square, covered by a small image (so the page goes to OCR)."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    canv = canvas.Canvas(str(path), pagesize=(points, points), invariant=1)
    canv.drawImage(ImageReader(io.BytesIO(_page_image())), 0, 0, width=points, height=points)
    canv.showPage()
    canv.save()
    return path


def make_long_scan(path: Path, pages: int, image: bytes | None = None) -> Path:
    """An image-only A4 PDF of ``pages`` pages that all draw one shared JPEG (small on disk)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    reader = ImageReader(io.BytesIO(image or _page_image()))
    canv = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for _ in range(pages):
        canv.drawImage(reader, 0, 0, width=A4[0], height=A4[1])
        canv.showPage()
    canv.save()
    return path
