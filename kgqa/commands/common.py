"""What every CLI command shares: the consoles, the --json option, settings with logging on."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console

from kgqa.logging import configure_logging
from kgqa.settings import Settings, get_settings

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]

EXIT_FAILED_FILES = 3
EXIT_UNAVAILABLE = 4
EXIT_STALE_EDIT = 5
"""An edit was made against a version that moved on: re-read it (``kgqa kg version ID``) and retry."""


def load_settings() -> Settings:
    """The process settings, with logging configured from them (stderr, structured)."""
    from ingest.redact import Redactor

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json, Redactor(settings.ingest.redact))
    return settings


def cli_caller():
    """The CLI's caller: the local user (``cli:<user>``) with role admin; what Changes and audit
    records name as the actor of a command."""
    import getpass

    from serving.types import Caller, Role

    return Caller(key_id=f"cli:{getpass.getuser()}", role=Role.ADMIN)


def print_json(payload: object) -> None:
    sys.stdout.write(_json_text(payload, indent=2) + "\n")


def print_json_line(payload: object) -> None:
    """One line of a JSON-lines output (``kgqa ask --batch``), flushed: a reader sees each at once."""
    sys.stdout.write(_json_text(payload) + "\n")
    sys.stdout.flush()


def _json_text(payload: object, indent: int | None = None) -> str:
    """``payload`` as JSON, readable Chinese where it can be; escaped where the text cannot be
    written as UTF-8 (a lone surrogate, ``"\\ud800"`` in a batch line's id, would otherwise stop
    the command mid-output)."""
    text = json.dumps(payload, ensure_ascii=False, indent=indent, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(payload, indent=indent, default=str)
    return text


__all__ = [
    "EXIT_FAILED_FILES",
    "EXIT_STALE_EDIT",
    "EXIT_UNAVAILABLE",
    "JsonOpt",
    "cli_caller",
    "err",
    "load_settings",
    "out",
    "print_json",
    "print_json_line",
]
