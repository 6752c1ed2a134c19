"""Reading config files (YAML or JSON): one place that names the file and the problem.

Every training config (dataset, templates, SFT, GRPO, eval) is a mapping in a file a person
edits; a typo must come back as ``<path>: <what went wrong>``, never as a stack trace.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from kgqa.errors import ConfigError


def read_mapping(path: Path, what: str) -> dict[str, Any]:
    """The mapping in ``path`` (JSON for ``.json``, else YAML; an empty file is ``{}``).

    Args:
        path: the file.
        what: what the file is, for messages ("SFT config", "question templates").

    Raises:
        ConfigError: the file is missing or unreadable, does not parse, or is not a mapping.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: {what} file not found") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot parse the {what} ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the {what} must be a mapping of field: value, got {type(data).__name__}")
    return data


__all__ = ["read_mapping"]
