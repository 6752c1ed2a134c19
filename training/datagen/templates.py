"""The question templates, kept as data (``training/templates/questions.yaml``) and validated here.

Templates are data so that knowledge managers can add phrasings without touching code; the bank
checks them when it loads (unknown question types, slots a type cannot fill, duplicate ids,
a type without a phrasing for each style) and names the file and the problem, because a typo found
at generation time would silently drop every question of that type.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kgqa.errors import ConfigError
from training.config_files import read_mapping
from training.datagen.types import DIFFICULTIES, QUESTION_TYPES, STYLES, Difficulty, Style

DEFAULT_TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "questions.yaml"

Length = Literal["short", "long"]
LENGTHS: tuple[str, ...] = ("short", "long")

#: The slots the generator fills for each question type; a template may use any subset.
SLOTS: dict[str, frozenset[str]] = {
    "definition": frozenset({"term", "doc", "topic"}),
    "fact": frozenset({"subject", "action", "ask", "quantity_kind", "doc", "topic", "number"}),
    "obligation": frozenset({"subject", "action", "doc", "topic", "number"}),
    "condition": frozenset({"subject", "doc", "topic", "number"}),
    "procedure": frozenset({"topic", "doc", "number"}),
    "cross_reference": frozenset({"topic", "doc", "number", "other_number"}),
    "comparison": frozenset({"topic", "doc", "number", "other_number"}),
    "table": frozenset({"topic", "doc", "row_key", "column"}),
    "unanswerable": frozenset({"topic"}),
}

#: The variants a template may be restricted to, per question type (see the YAML header).
VARIANTS: dict[str, frozenset[str]] = {
    "obligation": frozenset({"must", "must_not", "may"}),
    "fact": frozenset({"duration", "amount", "rate", "threshold"}),
}


def template_slots(text: str) -> set[str]:
    """The ``{slot}`` names of a template text (raises ValueError on a malformed format string)."""
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"malformed template {text!r}: {exc}; write {{name}} for a slot") from exc
    for _, field_name, format_spec, conversion in parsed:
        if field_name is None:
            continue
        if not field_name or not field_name.isidentifier() or format_spec or conversion:
            raise ValueError(f"malformed slot {{{field_name}}} in {text!r}; write {{name}}")
        names.add(field_name)
    return names


class QuestionTemplate(BaseModel):
    """One phrasing of one question type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, description="Stable id; part of every pair id it writes.")
    text: str = Field(min_length=2, description="The question with {slot} placeholders.")
    style: Style = Field(description="formal or everyday wording.")
    length: Length = Field(description="short or long question.")
    difficulty: tuple[Difficulty, ...] = Field(
        default=tuple(DIFFICULTIES), min_length=1, description="Difficulties this phrasing serves."
    )
    variant: str | None = Field(default=None, description="Restricts it to candidates of this variant.")

    @field_validator("text")
    @classmethod
    def _parses(cls, text: str) -> str:
        template_slots(text)
        return text

    @property
    def slots(self) -> set[str]:
        return template_slots(self.text)

    def render(self, values: Mapping[str, str]) -> str:
        """The question with its slots filled (every slot must be in ``values``)."""
        return self.text.format_map({k: values[k] for k in self.slots})


class OutOfScopeTopic(BaseModel):
    """A topic finance manuals do not regulate, with the words that would show it is regulated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(min_length=2)
    keywords: tuple[str, ...] = Field(min_length=1)


class TemplateBank(BaseModel):
    """All question templates and the out-of-scope topics of unanswerable questions.

    Load it with :meth:`load`; query it with :meth:`for_type` and :meth:`select`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    question_types: dict[str, tuple[QuestionTemplate, ...]]
    out_of_scope: tuple[OutOfScopeTopic, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> TemplateBank:
        unknown = sorted(set(self.question_types) - set(QUESTION_TYPES))
        if unknown:
            raise ValueError(f"unknown question types {unknown}; known: {list(QUESTION_TYPES)}")
        missing = [t for t in QUESTION_TYPES if not self.question_types.get(t)]
        if missing:
            raise ValueError(f"no templates for question types {missing}")
        seen: set[str] = set()
        for qtype, templates in self.question_types.items():
            for tpl in templates:
                if tpl.id in seen:
                    raise ValueError(f"template id {tpl.id!r} is used twice")
                seen.add(tpl.id)
                extra = sorted(tpl.slots - SLOTS[qtype])
                if extra:
                    raise ValueError(
                        f"template {tpl.id!r} ({qtype}) uses slots {extra} that {qtype} questions cannot "
                        f"fill; allowed: {sorted(SLOTS[qtype])}"
                    )
                if tpl.variant is not None and tpl.variant not in VARIANTS.get(qtype, frozenset()):
                    allowed = sorted(VARIANTS.get(qtype, frozenset())) or "none"
                    raise ValueError(f"template {tpl.id!r} ({qtype}) has variant {tpl.variant!r}; allowed: {allowed}")
            for style in STYLES:
                if not any(t.style == style and t.variant is None for t in templates):
                    raise ValueError(f"question type {qtype!r} has no {style} template without a variant")
        return self

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path | None = None) -> TemplateBank:
        """Read and validate a template file (the packaged ``questions.yaml`` by default).

        Raises:
            ConfigError: the file is missing, is not YAML, or fails validation; the message names
                the file and the problem.
        """
        path = Path(path) if path is not None else DEFAULT_TEMPLATES
        raw = read_mapping(path, "question templates")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"{path}: invalid question templates: {problems}") from exc

    # -- queries --------------------------------------------------------------------------------
    def framing(self) -> tuple[str, ...]:
        """The literal text of every phrasing, split at the slots: question framing, not content.

        The quality stage ignores these words when it measures how much of a question names its
        clause (``是如何界定的`` says nothing about which clause is meant).
        """
        return tuple(
            piece
            for templates in self.question_types.values()
            for tpl in templates
            for piece in re.split(r"\{\w+\}", tpl.text)
            if piece.strip()
        )

    def for_type(self, qtype: str) -> tuple[QuestionTemplate, ...]:
        """Every template of ``qtype`` (raises ConfigError for an unknown type)."""
        if qtype not in self.question_types:
            raise ConfigError(f"unknown question type {qtype!r}; known: {list(QUESTION_TYPES)}")
        return self.question_types[qtype]

    def select(
        self,
        qtype: str,
        *,
        style: str | None = None,
        difficulty: str | None = None,
        length: str | None = None,
        variant: str | None = None,
    ) -> list[QuestionTemplate]:
        """Templates of ``qtype`` matching the given facets (``None``: any).

        A template restricted to a variant matches only that variant; one without a variant
        matches every candidate.
        """
        return [
            t
            for t in self.for_type(qtype)
            if (style is None or t.style == style)
            and (difficulty is None or difficulty in t.difficulty)
            and (length is None or t.length == length)
            and (t.variant is None or t.variant == variant)
        ]

    def difficulties(self, qtype: str) -> tuple[str, ...]:
        """The difficulties some template of ``qtype`` serves, in canonical order."""
        served = {d for t in self.for_type(qtype) for d in t.difficulty}
        return tuple(d for d in DIFFICULTIES if d in served)


__all__ = [
    "DEFAULT_TEMPLATES",
    "LENGTHS",
    "SLOTS",
    "VARIANTS",
    "OutOfScopeTopic",
    "QuestionTemplate",
    "TemplateBank",
    "template_slots",
]
