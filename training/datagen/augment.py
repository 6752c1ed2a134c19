"""Question augmentation: punctuation-stripped and paraphrased variants of generated pairs.

Users type questions without punctuation and in their own words; a model trained only on the
generator's tidy phrasings leans on the question mark and the template wording. Each variant is a
new pair with the same gold clauses, context and reference answer as its parent, so it teaches the
same knowledge and is verified by the same evidence. The number of punctuation variants is exactly
``round(punct_ratio * originals)`` (chosen by a seeded hash), so the configured ratio can be checked
on the dataset.

Example::

    pairs = augment(pairs, AugmentConfig(punct_ratio=0.3, seed=7), Paraphraser.from_yaml())
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field

from kgqa.errors import ConfigError
from training.datagen.types import QAPair

log = structlog.get_logger(__name__)

#: An LLM paraphraser: ``(question, n) -> up to n rephrasings`` (the llm module provides one).
LLMParaphrase = Callable[[str, int], list[str]]

DEFAULT_RULES = Path(__file__).resolve().parents[1] / "templates" / "paraphrase.yaml"

# Marks that carry meaning and are never stripped: percent and per-mille signs.
_KEEP = frozenset("%％‰‱")


class AugmentConfig(BaseModel):
    """How questions are varied.

    Attributes:
        punct_ratio: share of original questions (0..1) that get one punctuation-stripped variant.
        punct_drop_prob: share of the punctuation marks (0..1) removed in such a variant (at least
            one mark is always removed, so the variant differs from its parent).
        punct_on_context: also strip punctuation from the clause text the punctuation variant's
            prompt shows (stored as ``pair.extra["strip_context_punct"]``, honoured at export; the
            reference answer keeps its punctuation and citation markers).
        paraphrases_per_question: paraphrased variants per original question (0 disables).
        seed: seed of every random choice (which questions, which marks, which rewrites).
    """

    model_config = ConfigDict(extra="forbid")

    punct_ratio: float = Field(0.3, ge=0.0, le=1.0, description="share of questions with a punct variant")
    punct_drop_prob: float = Field(1.0, ge=0.0, le=1.0, description="share of punctuation marks removed")
    punct_on_context: bool = Field(False, description="strip punctuation from the shown clause text too")
    paraphrases_per_question: int = Field(1, ge=0, le=10, description="paraphrased variants per question")
    seed: int = Field(0, description="seed of all random choices")


def _is_punct(text: str, i: int) -> bool:
    """Whether ``text[i]`` is a strippable punctuation mark.

    Unicode punctuation, except % signs and marks between two ASCII digits or letters (3.5, 1,000,
    2/3, CAS-14-收入), whose removal would change a number or an id.
    """
    ch = text[i]
    if ch in _KEEP or not unicodedata.category(ch).startswith("P"):
        return False
    if 0 < i < len(text) - 1:
        before, after = text[i - 1], text[i + 1]
        if before.isascii() and after.isascii() and before.isalnum() and after.isalnum():
            return False
    return True


def punctuation_positions(text: str) -> list[int]:
    """Indexes of the strippable punctuation marks of ``text``."""
    return [i for i in range(len(text)) if _is_punct(text, i)]


def strip_punctuation(text: str, rng: random.Random, drop_prob: float = 1.0) -> str:
    """``text`` with each strippable punctuation mark removed with probability ``drop_prob``.

    At least one mark is removed when the text has any (an augmentation that changes nothing is
    not a variant); numbers, percentages and ids keep their marks.
    """
    positions = punctuation_positions(text)
    if not positions:
        return text
    drop = {i for i in positions if drop_prob >= 1.0 or rng.random() < drop_prob}
    if not drop:
        drop = {rng.choice(positions)}
    return "".join(ch for i, ch in enumerate(text) if i not in drop)


def normalize_question(text: str) -> str:
    """The question without punctuation, spaces and letter case: what "the same question" means."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if not ch.isspace() and not unicodedata.category(ch).startswith("P")).lower()


class Paraphraser:
    """Rule-based question paraphrases (``training/templates/paraphrase.yaml``), optionally LLM-first.

    Args:
        rules: the parsed rules (``protect``, ``strip_prefixes``, ``patterns``, ``synonyms``,
            ``prefixes``).
        llm: an optional ``(question, n) -> list[str]`` callable asked first; the rules fill up
            what it does not give (or everything when it fails).
    """

    def __init__(self, rules: dict, llm: LLMParaphrase | None = None) -> None:
        try:
            self._protect = re.compile("|".join(f"(?:{p})" for p in rules.get("protect", [])) or r"(?!x)x")
            self._strip_prefixes = sorted(rules.get("strip_prefixes", []), key=len, reverse=True)
            self._patterns = [
                (re.compile(p["match"]), [str(r) for r in p["rewrite"]]) for p in rules.get("patterns", [])
            ]
            synonyms = {str(k): [str(v) for v in vs] for k, vs in (rules.get("synonyms") or {}).items()}
            self._prefixes = [str(p) for p in rules.get("prefixes", [])]
        except (re.error, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"invalid paraphrase rules: {exc}") from exc
        self._synonyms = synonyms
        keys = sorted(synonyms, key=len, reverse=True)
        self._synonym_re = re.compile("|".join(map(re.escape, keys))) if keys else None
        self._llm = llm

    def framing(self) -> tuple[str, ...]:
        """The fixed words rewrites add (prefixes, rewrite text, synonyms): framing, not content."""
        rewrites = [piece for _, texts in self._patterns for t in texts for piece in re.split(r"\{\w+\}", t)]
        words = [w for k, vs in self._synonyms.items() for w in (k, *vs)]
        return tuple(t for t in (*self._strip_prefixes, *self._prefixes, *rewrites, *words) if t.strip())

    @classmethod
    def from_yaml(cls, path: Path | str | None = None, llm: LLMParaphrase | None = None) -> Paraphraser:
        """Load the rules from ``path`` (default: ``training/templates/paraphrase.yaml``)."""
        path = Path(path) if path is not None else DEFAULT_RULES
        try:
            rules = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read paraphrase rules {path}: {exc}") from exc
        if not isinstance(rules, dict):
            raise ConfigError(f"paraphrase rules {path} must be a mapping")
        return cls(rules, llm=llm)

    # -- rules ----------------------------------------------------------------------------------
    def _core(self, question: str) -> str:
        """The question without a leading polite prefix."""
        q = question.strip()
        for p in self._strip_prefixes:
            if q.startswith(p) and len(q) > len(p):
                return q[len(p) :].lstrip("，, ")
        return q

    def _substitute(self, text: str, rng: random.Random) -> str:
        """Synonyms replaced outside the protected spans (each occurrence its own choice)."""
        if self._synonym_re is None:
            return text
        out: list[str] = []
        pos = 0
        for m in [*self._protect.finditer(text), None]:
            end = m.start() if m is not None else len(text)
            chunk = text[pos:end]
            out.append(self._synonym_re.sub(lambda s: rng.choice(self._synonyms[s.group(0)]), chunk))
            if m is not None:
                out.append(m.group(0))
                pos = m.end()
        return "".join(out)

    def _rule_candidates(self, question: str, rng: random.Random) -> list[str]:
        """Candidates, strongest rewrites first (pattern+synonyms, synonyms, pattern, prefix)."""
        core = self._core(question)
        rewrites: list[str] = []
        varied: list[str] = []
        for pattern, templates in self._patterns:
            m = pattern.match(core)
            if m:
                groups = {k: (v or "") for k, v in m.groupdict().items()}
                rewrites += [t.format(**groups) for t in templates]
                # synonyms go into the captured words only, never into the rewrite's own wording
                varied += [t.format(**{k: self._substitute(v, rng) for k, v in groups.items()}) for t in templates]
                break
        tiers: list[list[str]] = [varied, [self._substitute(core, rng)], rewrites]
        prefixed = [rng.choice(self._prefixes) + c for c in (self._substitute(core, rng), core)] if self._prefixes else []
        tiers.append(prefixed)
        out: list[str] = []
        for tier in tiers:
            tier = list(tier)
            rng.shuffle(tier)
            out += tier
        return out

    def paraphrase(self, question: str, n: int, rng: random.Random | None = None) -> list[str]:
        """Up to ``n`` rephrasings of ``question`` that differ from it (ignoring punctuation).

        Fewer than ``n`` come back only when neither the LLM nor the rules find enough.
        """
        rng = rng or random.Random(question)
        seen = {normalize_question(question)}
        out: list[str] = []

        def take(candidates: Sequence[str]) -> None:
            for c in candidates:
                c = c.strip()
                key = normalize_question(c)
                if len(out) >= n or not c or not key or key in seen:
                    continue
                seen.add(key)
                out.append(c)

        if self._llm is not None and n > 0:
            try:
                take(self._llm(question, n))
            except Exception as exc:  # noqa: BLE001 - an LLM outage must not stop a build: rules take over
                log.warning("paraphrase.llm_failed", error=str(exc), question=question[:40])
        if len(out) < n:
            take(self._rule_candidates(question, rng))
        return out


def _rank(seed: int, pair_id: str) -> str:
    return hashlib.sha256(f"{seed}:{pair_id}".encode()).hexdigest()


def _variant(parent: QAPair, pair_id: str, question: str, augmentation: str, extra: dict) -> QAPair:
    return dataclasses.replace(
        parent,
        pair_id=pair_id,
        question=question,
        augmentation=augmentation,
        parent_id=parent.pair_id,
        gold=dict(parent.gold),
        context_ids=list(parent.context_ids),
        scores={},
        band=None,
        reject_reason=None,
        split=None,
        extra={**parent.extra, **extra},
    )


def augment(
    pairs: Sequence[QAPair], config: AugmentConfig | None = None, paraphraser: Paraphraser | None = None
) -> list[QAPair]:
    """The pairs followed by their punctuation-stripped and paraphrased variants.

    Originals are the pairs with ``augmentation == "none"``; pairs that already are variants (carried
    over from an earlier build) pass through unchanged. Variant ids are ``<parent>-punct`` and
    ``<parent>-para<i>``, so a rebuild with the same seed gives the same ids.

    Args:
        pairs: generated pairs.
        config: the ratios and seed (defaults when ``None``).
        paraphraser: the paraphraser (the YAML rules when ``None`` and paraphrases are asked for).

    Returns:
        Originals in input order, then the punctuation variants, then the paraphrases.
    """
    config = config or AugmentConfig()
    originals = [p for p in pairs if p.augmentation == "none"]
    existing = {p.pair_id for p in pairs}

    target = round(config.punct_ratio * len(originals))
    eligible = sorted((p for p in originals if punctuation_positions(p.question)), key=lambda p: _rank(config.seed, p.pair_id))
    if len(eligible) < target:
        log.warning("augment.punct_short", wanted=target, eligible=len(eligible))
    punct: list[QAPair] = []
    for parent in eligible[:target]:
        rng = random.Random(f"{config.seed}:{parent.pair_id}:punct")
        question = strip_punctuation(parent.question, rng, config.punct_drop_prob)
        extra = {"strip_context_punct": True} if config.punct_on_context else {}
        vid = f"{parent.pair_id}-punct"
        if vid not in existing:
            punct.append(_variant(parent, vid, question, "punct", extra))

    paraphrased: list[QAPair] = []
    if config.paraphrases_per_question > 0 and originals:
        paraphraser = paraphraser or Paraphraser.from_yaml()
        for parent in originals:
            rng = random.Random(f"{config.seed}:{parent.pair_id}:para")
            for i, question in enumerate(paraphraser.paraphrase(parent.question, config.paraphrases_per_question, rng)):
                vid = f"{parent.pair_id}-para{i}"
                if vid not in existing:
                    paraphrased.append(_variant(parent, vid, question, "paraphrase", {}))
    log.info("augment.done", originals=len(originals), punct=len(punct), paraphrase=len(paraphrased))
    return [*pairs, *punct, *paraphrased]


__all__ = [
    "AugmentConfig",
    "LLMParaphrase",
    "Paraphraser",
    "augment",
    "normalize_question",
    "punctuation_positions",
    "strip_punctuation",
]
