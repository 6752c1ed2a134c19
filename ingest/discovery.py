"""Which files an ingestion run reads: folders expanded, links and special files left alone.

A folder handed to ``kgqa ingest`` is a trust boundary: whoever can write into it must not be able
to make the service read anything outside it. So while walking a folder, **symbolic links are
never followed** — not to files, not to folders, wherever they point (a link named ``x.txt`` to
``/etc/passwd`` would otherwise become a clause any reader can fetch) — and special files (FIFOs,
sockets, devices) are skipped, since reading one blocks or returns endless data. Each skipped
entry is reported as a warning. A path named on the command line is the user's own choice and
is used even when it is a link (resolved once, here); special files are skipped there too.
Hidden entries (names starting with ``.``) are skipped silently: they are tool state (``.git``),
not manuals.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.parsers import SUPPORTED_SUFFIXES
from kgqa.errors import UnsupportedFormat


@dataclass(frozen=True)
class SkippedPath:
    """An entry that was deliberately not read, and why (reported as a warning)."""

    path: Path
    reason: str


@dataclass
class Discovery:
    """Files found under the given paths, the ones refused up front, and the ones skipped."""

    files: list[Path] = field(default_factory=list)
    rejected: list[UnsupportedFormat] = field(default_factory=list)
    skipped: list[SkippedPath] = field(default_factory=list)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _walk(folder: Path, skipped: list[SkippedPath]) -> Iterator[Path]:
    """Regular files under ``folder`` in name order; links and special files go to ``skipped``."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        skipped.append(SkippedPath(folder, f"folder cannot be read ({exc.strerror or exc})"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_symlink():
            target = os.readlink(entry.path)
            skipped.append(SkippedPath(path, f"symbolic link to {target} not followed"))
        elif entry.is_dir(follow_symlinks=False):
            yield from _walk(path, skipped)
        elif entry.is_file(follow_symlinks=False):
            yield path
        else:
            kind = _kind(entry.stat(follow_symlinks=False).st_mode)
            skipped.append(SkippedPath(path, f"{kind}, not a regular file: skipped"))


def discover(paths: Iterable[Path]) -> Discovery:
    """Expand folders (recursively) into files, in a stable order; see the module docstring.

    Files with an unsupported extension are rejected with a reason rather than silently skipped,
    so a user who drops a spreadsheet into the manuals folder learns it was not ingested.
    """
    found = Discovery()
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_symlink():
            path = path.resolve()  # named by the user: used, but read as the file it points to
        try:
            mode = path.stat().st_mode
        except OSError:
            found.rejected.append(UnsupportedFormat(path, "file does not exist"))
            continue
        if stat.S_ISDIR(mode):
            candidates = list(_walk(path, found.skipped))
        elif stat.S_ISREG(mode):
            candidates = [path]
        else:
            found.skipped.append(SkippedPath(path, f"{_kind(mode)}, not a regular file: skipped"))
            continue
        for p in candidates:
            key = Path(os.path.abspath(p))
            if key in seen:
                continue
            seen.add(key)
            if p.suffix.lower() not in SUPPORTED_SUFFIXES:
                supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
                found.rejected.append(
                    UnsupportedFormat(
                        p, f"unsupported file type '{p.suffix or '(none)'}' (supported: {supported})"
                    )
                )
            else:
                found.files.append(p)
    return found
