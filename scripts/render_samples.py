"""Re-render the committed sample manuals under ``samples/manuals/`` from their Markdown in ``samples/src/``.

The samples must cover every ingestible format while never presenting the same manual twice to
ingestion, so each source is rendered into exactly one format: the management manual as a
text-layer PDF (running header, page-numbered footer, a blank page, tables split across pages) and
the business manual as a DOCX (section header and footer). Rendering is deterministic, so running
this script on an unchanged source leaves the committed files byte-identical.

Usage::

    python -m scripts.render_samples [--out DIR]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from scripts.render_docs import DEFAULT_FOOTER, render_docx, render_pdf

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples" / "manuals"
SOURCES = REPO / "samples" / "src"
#: Running header of the fictional company's rule book, as printed on every page of the manuals.
HEADER = "云岭建设集团有限公司 财务管理制度汇编"


@dataclass(frozen=True)
class Sample:
    """One rendered sample: its Markdown source and the single format it ships in.

    Attributes:
        source: File name under ``samples/src``.
        target: File name under the output directory; the suffix picks the renderer.
        blank_page_after: For PDFs, the page followed by a blank page (None for no blank page).
    """

    source: str
    target: str
    blank_page_after: int | None = None


SAMPLES_TO_RENDER: tuple[Sample, ...] = (
    Sample("管理手册.md", "管理手册.pdf", blank_page_after=2),
    Sample("业务手册.md", "业务手册.docx"),
)


def render_all(out_dir: Path = SAMPLES, src_dir: Path = SOURCES) -> list[Path]:
    """Render every sample source into ``out_dir``.

    Args:
        out_dir: Where rendered files go; the committed location by default, a temporary
            directory in tests that check the committed files are current.
        src_dir: Where the Markdown sources live.

    Returns:
        The paths written, in ``SAMPLES_TO_RENDER`` order.
    """
    written = []
    for sample in SAMPLES_TO_RENDER:
        markdown = (src_dir / sample.source).read_text(encoding="utf-8")
        target = out_dir / sample.target
        if target.suffix == ".pdf":
            render_pdf(
                markdown,
                target,
                header=HEADER,
                footer=DEFAULT_FOOTER,
                blank_page_after=sample.blank_page_after,
            )
        elif target.suffix == ".docx":
            render_docx(markdown, target, header=HEADER, footer=DEFAULT_FOOTER)
        else:
            raise ValueError(f"no renderer for {target.suffix!r} ({sample.target})")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.render_samples", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--out", type=Path, default=SAMPLES, help="output directory (default: samples/manuals/)"
    )
    args = parser.parse_args(argv)
    for path in render_all(args.out):
        print(path)


if __name__ == "__main__":
    main()
