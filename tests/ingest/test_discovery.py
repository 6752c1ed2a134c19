"""Folder walking: links are never followed out of (or inside) a folder, special files are skipped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest.discovery import discover


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "manuals"
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("# 手册\n\n第一条 正文。\n", encoding="utf-8")
    (root / "sub" / "b.txt").write_text("第一条 正文。\n", encoding="utf-8")
    (root / ".hidden.md").write_text("第一条 隐藏。\n", encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("第一条 不该被读取。\n", encoding="utf-8")
    os.symlink("/etc/passwd", root / "x.txt")
    os.symlink(outside, root / "linked-folder")
    os.symlink(root / "a.md", root / "sub" / "same-folder-link.md")  # even inside the folder
    os.mkfifo(root / "pipe.md")
    return root


def test_links_and_special_files_are_skipped_with_a_reason(folder: Path) -> None:
    found = discover([folder])
    assert [p.relative_to(folder).as_posix() for p in found.files] == ["a.md", "sub/b.txt"]
    assert found.rejected == []
    skipped = {s.path.relative_to(folder).as_posix(): s.reason for s in found.skipped}
    assert skipped.keys() == {"x.txt", "linked-folder", "sub/same-folder-link.md", "pipe.md"}
    assert skipped["x.txt"] == "symbolic link to /etc/passwd not followed"
    assert "symbolic link" in skipped["linked-folder"] and "not followed" in skipped["linked-folder"]
    assert skipped["pipe.md"] == "a FIFO, not a regular file: skipped"


def test_a_link_named_by_the_user_is_read_as_its_target(folder: Path, tmp_path: Path) -> None:
    link = tmp_path / "my-manual.md"
    os.symlink(folder / "a.md", link)
    found = discover([link])
    assert found.files == [(folder / "a.md").resolve()] and found.skipped == []
    fifo = discover([folder / "pipe.md"])
    assert fifo.files == [] and fifo.skipped[0].reason == "a FIFO, not a regular file: skipped"


def test_missing_and_unsupported_paths_are_rejected(folder: Path, tmp_path: Path) -> None:
    (folder / "sheet.xlsx").write_bytes(b"PK")
    found = discover([folder / "sheet.xlsx", tmp_path / "nowhere.md", folder / "a.md", folder])
    assert [(r.path.name, r.reason.split(" (")[0]) for r in found.rejected] == [
        ("sheet.xlsx", "unsupported file type '.xlsx'"),
        ("nowhere.md", "file does not exist"),
    ]
    assert [p.name for p in found.files] == ["a.md", "b.txt"]  # a.md once, though named twice
