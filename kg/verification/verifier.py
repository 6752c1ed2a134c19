"""The answer verifier: citations resolve to active clauses, atoms and sentences are supported.

Rules (the "core promise" of DESIGN.md, Verification). An answer is verified when

1. it cites at least one clause, every ``[[CLAUSE_ID]]`` resolves to an *active* clause (and to
   one of ``allowed_ids`` when given), and no marker is malformed;
2. every checkable atom of every sentence (amounts, rates, durations, multiples, dates, article
   numbers, parties, obligation modality) is found, normalized, in the clauses the sentence cites
   (a sentence without its own marker: in any clause the answer cites); a modal verb and the party
   before it are checked where the clause states the same thing (see :mod:`kg.verification.atoms`);
3. every content sentence is covered by its citations: support score >= ``support_threshold``
   (see :mod:`kg.verification.support`). A sentence's own markers support it jointly; a sentence
   without a marker must be covered by a single cited clause.

Atoms are checked against the text of every clause that resolved, even a superseded or retired
one, so a stale citation is reported once (as a ``citation`` atom) instead of as a cascade of
"missing" numbers. :meth:`Verifier.verify_against` is pure (no I/O), so GRPO can fetch evidence
once per batch and score every completion against it; the normalized facts of each clause version
are cached per verifier.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping

from kg.citations import parse_citations, strip_markers
from kg.verification.atoms import (
    DEFAULT_PARTIES,
    ClauseFacts,
    answer_quantities,
    clause_facts,
    find_parties,
    lead,
    mask_titles,
    modal_spans,
    tail,
)
from kg.verification.sentences import AnswerSentence, content_length, split_sentences
from kg.verification.support import align_quote, bigrams, clause_bigrams, content, recall, sentence_bigrams
from kg.verification.types import (
    Atom,
    CitationCheck,
    EvidenceClause,
    EvidenceSource,
    SentenceCheck,
    VerificationResult,
)
from kgqa.errors import ConfigError

REFUSAL_TEXT = "手册中未找到相关规定"
# Politeness around the refusal phrase (抱歉，经检索，) is fine; more than this is a claim.
_REFUSAL_EXTRA_CHARS = 12


def is_refusal(answer: str) -> bool:
    """Whether ``answer`` is the explicit "not found in the manuals" answer, with no citation.

    A refusal is a valid answer that is not verified; a few words around the phrase are allowed,
    anything longer is an answer that has to be verified like any other.
    """
    if REFUSAL_TEXT not in answer or parse_citations(answer).markers:
        return False
    return content_length(strip_markers(answer).replace(REFUSAL_TEXT, "")) <= _REFUSAL_EXTRA_CHARS


class Verifier:
    """Checks answers against the clauses they cite.

    Args:
        source: where :meth:`verify` fetches cited clauses (``kg.evidence.GraphEvidence``);
            ``None`` for callers that only use :meth:`verify_against`.
        support_threshold: the support score (0..1) a sentence needs; 0.5 separates faithful
            paraphrases (>= 0.65) from invented sentences (<= 0.40) on the test answers.
        parties: the party lexicon; the parties named by the evidence's triples are added per answer.
        cache_size: clause versions whose normalized facts are kept.
    """

    def __init__(
        self,
        source: EvidenceSource | None = None,
        *,
        support_threshold: float = 0.5,
        parties: Iterable[str] = DEFAULT_PARTIES,
        cache_size: int = 4096,
    ) -> None:
        if not 0.0 <= support_threshold <= 1.0:
            raise ConfigError(f"support_threshold must be between 0 and 1, got {support_threshold}")
        self._source = source
        self._threshold = support_threshold
        self._parties = tuple(dict.fromkeys(p for p in parties if p))
        self._cache: OrderedDict[tuple, ClauseFacts] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    # -- public API -----------------------------------------------------------------------------
    def verify(self, answer: str, *, allowed_ids: Collection[str] | None = None) -> VerificationResult:
        """Fetch the cited clauses (one fetch) and verify ``answer`` against them.

        Raises:
            ConfigError: the verifier was built without an evidence source.
            GraphUnavailable: the source is the graph and Neo4j cannot be reached.
        """
        if self._source is None:
            raise ConfigError("this Verifier has no evidence source; build it with GraphEvidence(driver)")
        ids = parse_citations(answer).clause_ids
        evidence = self._source.fetch(ids) if ids else {}
        return self.verify_against(answer, evidence, allowed_ids=allowed_ids)

    def verify_against(
        self,
        answer: str,
        evidence: Mapping[str, EvidenceClause],
        *,
        allowed_ids: Collection[str] | None = None,
    ) -> VerificationResult:
        """Verify ``answer`` against already fetched clauses; pure, no I/O.

        Args:
            answer: the answer with ``[[CLAUSE_ID]]`` markers.
            evidence: clause id -> latest version of that clause; ids absent here are "invented".
            allowed_ids: when given, citations outside it are flagged (GRPO passes gold + retrieved).

        Returns:
            The verdict with per-citation quotes, per-sentence scores and the unsupported atoms.
        """
        parsed = parse_citations(answer)
        malformed_atoms = [
            Atom("citation", m, m, "", "malformed citation marker; write [[CLAUSE_ID]]")
            for m in parsed.malformed
        ]
        if is_refusal(answer):
            return VerificationResult(
                False, unsupported=malformed_atoms, malformed_markers=list(parsed.malformed), refusal=True
            )
        cited = parsed.clause_ids
        allowed = set(allowed_ids) if allowed_ids is not None else None
        facts = {cid: self._facts(evidence[cid]) for cid in cited if cid in evidence}
        lexicon = tuple(dict.fromkeys([*self._parties, *(p for f in facts.values() for p in f.parties)]))
        problems = {cid: r for cid in cited if (r := _citation_problem(cid, evidence.get(cid), allowed))}

        sentences = split_sentences(answer, parsed.malformed)
        unsupported: list[Atom] = []
        asserted: list[Atom] = []
        reported: set[str] = set()
        checks: list[SentenceCheck] = []
        sentence_ok: list[bool] = []
        own_bigrams: list[frozenset[str]] = []
        for s in sentences:
            for cid in s.clause_ids:
                if cid in problems and cid not in reported:
                    reported.add(cid)
                    unsupported.append(Atom("citation", f"[[{cid}]]", cid, s.text, problems[cid]))
            if not s.has_content:
                sentence_ok.append(True)
                own_bigrams.append(frozenset())
                continue
            check, atoms, sb, by_assertion = self._check_sentence(
                s, [facts[c] for c in (s.clause_ids or cited) if c in facts], lexicon
            )
            own_bigrams.append(sb)
            unsupported += atoms
            asserted += by_assertion
            sentence_ok.append(not atoms)
            checks.append(check)
        for cid, reason in problems.items():
            if cid not in reported:
                unsupported.append(Atom("citation", f"[[{cid}]]", cid, "", reason))
        unsupported += malformed_atoms

        citations = [
            self._citation_check(
                cid, evidence.get(cid), facts.get(cid), sentences, own_bigrams, sentence_ok, problems
            )
            for cid in cited
        ]
        for check in citations:
            f = facts.get(check.clause_id)
            check.asserted = f is not None and any(
                a.normalized in f.asserted_quantities
                or (a.kind == "party" and a.normalized in f.asserted_haystack)
                for a in asserted
            )
        verified = bool(cited) and bool(checks) and not unsupported
        return VerificationResult(
            verified, citations, checks, unsupported, list(parsed.malformed), asserted=asserted
        )

    # -- helpers --------------------------------------------------------------------------------
    def _check_sentence(
        self, s: AnswerSentence, pool: list[ClauseFacts], lexicon: tuple[str, ...]
    ) -> tuple[SentenceCheck, list[Atom], frozenset[str], list[Atom]]:
        """Score one content sentence against ``pool`` (its own clauses, else all cited ones)."""
        sb = sentence_bigrams(s.text)
        if not pool:
            score = 0.0
        elif s.clause_ids:  # its own markers support it together
            score = recall(sb, frozenset().union(*(f.bigrams for f in pool)))
        else:  # no marker: one cited clause must cover it on its own
            score = max(recall(sb, f.bigrams) for f in pool)
        atoms, by_assertion = _check_atoms(s.text, pool, lexicon)
        if score < self._threshold:
            if pool:
                reason = (
                    "the cited clauses do not say this"
                    if s.clause_ids
                    else "uncited, and no cited clause says this"
                )
            else:
                reason = (
                    "no clause this sentence cites is in the graph" if s.clause_ids else "uncited sentence"
                )
            atoms.append(Atom("sentence", s.text, s.text, s.text, reason))
        return SentenceCheck(s.text, list(s.clause_ids), not atoms, round(score, 4)), atoms, sb, by_assertion

    def _citation_check(
        self,
        cid: str,
        clause: EvidenceClause | None,
        facts: ClauseFacts | None,
        sentences: list[AnswerSentence],
        own_bigrams: list[frozenset[str]],
        sentence_ok: list[bool],
        problems: Mapping[str, str],
    ) -> CitationCheck:
        citing = [i for i, s in enumerate(sentences) if cid in s.clause_ids and s.has_content]
        if clause is None or facts is None:
            return CitationCheck(cid, None, False, False, "", 0, 0, 0.0, False, allowed=cid not in problems)
        scores = {i: recall(own_bigrams[i], facts.bigrams) for i in citing}
        best = max(scores.values(), default=0.0)
        quoted = [i for i in citing if scores[i] >= self._threshold] or [
            i for i in citing if scores[i] == best
        ]
        spans = [align_quote(own_bigrams[i], facts.segments) for i in quoted]
        spans = [sp for sp in spans if sp[1] > sp[0]]
        start, end = (min(a for a, _ in spans), max(b for _, b in spans)) if spans else (0, 0)
        if (
            clause.number
            and clause.text.startswith(clause.number, start)
            and end > start + len(clause.number)
        ):
            start += len(clause.number)  # quote the words, not the article number in front of them
            while start < end and clause.text[start].isspace():
                start += 1
        allowed = problems.get(cid) != _NOT_ALLOWED
        verified = clause.active and allowed and all(sentence_ok[i] for i in citing)
        return CitationCheck(
            cid, clause.version, True, clause.active, clause.text[start:end], start, end, round(best, 4), verified,
            allowed=allowed,
        )  # fmt: skip

    def _facts(self, clause: EvidenceClause) -> ClauseFacts:
        key = (
            clause.clause_id,
            clause.version,
            clause.text,
            clause.number,
            clause.doc_title,
            tuple(clause.section_path),
            tuple(
                (t.subject, t.predicate, t.object, t.subject_type, t.object_type, t.asserted)
                for t in clause.triples
            ),
            tuple(clause.tables),
        )
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        facts = clause_facts(
            clause,
            clause_bigrams(
                [clause.text, clause.number, clause.doc_title, *clause.section_path, *clause.tables]
            ),
        )
        with self._lock:
            self._cache[key] = facts
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return facts


_NOT_ALLOWED = "cites a clause outside the allowed ids (the retrieved / gold clauses)"


def _citation_problem(cid: str, clause: EvidenceClause | None, allowed: set[str] | None) -> str | None:
    if clause is None:
        return "clause id not in the graph (invented or mistyped)"
    if not clause.active:
        return f"clause version {clause.version} is {clause.status}, not active; cite the current clause"
    if allowed is not None and cid not in allowed:
        return _NOT_ALLOWED
    return None


def _check_atoms(
    text: str, pool: list[ClauseFacts], lexicon: tuple[str, ...]
) -> tuple[list[Atom], list[Atom]]:
    """The atoms of one sentence that none of ``pool`` supports, without duplicates; and those that
    only editor-asserted triples support (accepted, reported)."""
    quantities = frozenset().union(*(f.quantities for f in pool))
    articles = frozenset().union(*(f.articles for f in pool))
    modalities = frozenset().union(*(f.modalities for f in pool))
    by_editor = frozenset().union(*(f.asserted_quantities for f in pool))
    out: dict[tuple[str, str], Atom] = {}
    asserted: dict[tuple[str, str], Atom] = {}
    for q in answer_quantities(text):
        known = articles if q.kind == "article" else quantities
        if q.kind != "article" and q.normalized not in known and q.normalized in by_editor:
            reason = "stated by an editor's asserted triple, not by the clause text"
            asserted.setdefault((q.kind, q.normalized), Atom(q.kind, q.surface, q.normalized, text, reason))
        elif q.normalized not in known:
            what = "article number" if q.kind == "article" else q.kind
            out.setdefault(
                (q.kind, q.normalized),
                Atom(q.kind, q.surface, q.normalized, text, f"{what} not in the cited clauses"),
            )
    masked = mask_titles(text)
    for name in find_parties(masked, lexicon):
        if not any(name in f.haystack for f in pool) and any(name in f.asserted_haystack for f in pool):
            reason = "named by an editor's asserted triple, not by the clause text"
            asserted.setdefault(("party", name), Atom("party", name, name, text, reason))
        elif not any(name in f.haystack for f in pool):
            out.setdefault(
                ("party", name), Atom("party", name, name, text, "party not named in the cited clauses")
            )
    for m in modal_spans(masked):
        # Where the clause writes the same words right after a modal, that modal (and the party
        # before it) must match; elsewhere (paraphrase), the class must occur in the cited clauses.
        governed = bigrams(content(tail(masked, m.end)))
        hits = [h for f in pool for h in f.governing(governed)]
        local = {cls for cls, _ in hits}
        if m.cls not in (local or modalities):
            where = "where the cited clause says this" if local else "in the cited clauses"
            reason = f"'{m.surface}' ({m.cls}) is not the obligation stated {where}"
            out.setdefault(("obligation", m.cls), Atom("obligation", m.surface, m.cls, text, reason))
        subjects = find_parties(lead(masked, m.start), lexicon)
        leads = [clause_lead for cls, clause_lead in hits if cls == m.cls]
        if subjects and leads and all(find_parties(x, lexicon) and subjects[-1] not in x for x in leads):
            reason = f"the cited clause puts this {m.cls} obligation on another party"
            out.setdefault(("party", subjects[-1]), Atom("party", subjects[-1], subjects[-1], text, reason))
    return list(out.values()), list(asserted.values())
