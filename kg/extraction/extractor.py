"""The rule-based triple extractor: a DocumentTree in, an Extraction (triples, entities, refs) out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest.types import ClauseItem, ClauseNode, DocumentTree
from kg.extraction import rules
from kg.extraction.text import strip_number
from kg.references import ClauseIndex, KnownDocuments, clause_references
from kg.types import EntityRecord, Extraction, ReferenceRecord, TripleRecord
from zhtext import sentence_spans

if TYPE_CHECKING:  # spaCy (and the torch it pulls in) loads when an extractor is built, not on import
    from spacy.language import Language

_GENERIC_SECTIONS = {"总则", "附则", "一般规定", "其他", "其他规定", "附录", "引言", "序言"}


def triple_id(clause_id: str, predicate: str, subject: str, obj: str) -> str:
    """Deterministic id of a fact: re-extracting an unchanged clause gives the same ids."""
    key = f"{clause_id}|{predicate}|{subject}|{obj}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def entity_id(kind: str, name: str) -> str:
    """``party:施工单位``, ``concept:收入``, ``document:CAS-22-金融工具确认和计量``: readable and stable across documents."""
    return f"{kind}:{name}"


@dataclass
class _Collector:
    """Accumulates one document's results, de-duplicating triples, entities and mentions."""

    triples: dict[str, TripleRecord] = field(default_factory=dict)
    entities: dict[str, EntityRecord] = field(default_factory=dict)
    mentions: set[tuple[str, str]] = field(default_factory=set)

    def entity(self, kind: str, name: str, clause_id: str, aliases: list[str] | None = None) -> str:
        eid = entity_id(kind, name)
        record = self.entities.setdefault(eid, EntityRecord(eid, name, kind, []))
        for alias in aliases or []:
            if alias != name and alias not in record.aliases:
                record.aliases.append(alias)
        self.mentions.add((clause_id, eid))
        return eid

    def triple(self, clause_id: str, draft: rules.Draft) -> None:
        tid = triple_id(clause_id, draft.predicate, draft.subject, draft.object)
        known = self.triples.get(tid)
        if known is not None and known.confidence >= draft.confidence:
            return
        subject_entity = (
            self.entity(draft.subject_kind, draft.subject, clause_id) if draft.subject_kind else None
        )
        object_entity = self.entity(draft.object_kind, draft.object, clause_id) if draft.object_kind else None
        self.triples[tid] = TripleRecord(
            triple_id=tid,
            clause_id=clause_id,
            subject=draft.subject,
            predicate=draft.predicate,
            object=draft.object,
            qualifiers={k: v for k, v in draft.qualifiers.items() if v is not None},
            confidence=round(min(max(draft.confidence, 0.0), 1.0), 3),
            origin="rule",
            subject_entity=subject_entity,
            object_entity=object_entity,
        )


class RuleTripleExtractor:
    """Extracts definitions, obligations, conditions, quantities, responsible parties and references.

    Args:
        nlp: a spaCy pipeline to reuse; ``None`` builds the blank ``zh`` + jieba pipeline (slow to
            create, so build one extractor per process and reuse it). A given pipeline without
            a party ``EntityRuler`` gets one added.
    """

    def __init__(self, nlp: Language | None = None) -> None:
        from kg.extraction.nlp import PARTY, build_nlp, modal_matcher, party_patterns

        self._nlp = nlp if nlp is not None else build_nlp()
        if not any(PARTY in getattr(pipe, "labels", ()) for _, pipe in self._nlp.pipeline):
            ruler = self._nlp.add_pipe("entity_ruler", name="kgqa_parties", config={"overwrite_ents": True})
            ruler.add_patterns(party_patterns())
        self._modals = modal_matcher(self._nlp)

    def extract(self, tree: DocumentTree, known_docs: KnownDocuments | None = None) -> Extraction:
        """Extract everything one document states.

        Args:
            tree: the structured document.
            known_docs: doc ids and normalized titles -> doc ids of documents already in the
                graph, used to resolve 《...》 references to their stored ids.

        Returns:
            Triples (each STATED_IN its clause), the entities they and the clauses mention, the
            (clause, entity) mentions, and the cross references.
        """
        from kg.extraction import nlp

        out = _Collector()
        index = ClauseIndex(tree)
        section_titles = {s.section_id: s.title for s in tree.sections}
        units = [(clause, self._units(clause)) for clause in tree.clauses]
        texts = [text for _, clause_units in units for text, _ in clause_units]
        docs = iter(self._nlp.pipe(texts, batch_size=64))
        references: list[ReferenceRecord] = []
        for clause, clause_units in units:
            title = section_titles.get(clause.section_id, "")
            topic = title if title and title not in _GENERIC_SECTIONS else tree.title
            last_subject = None
            for text, items in clause_units:
                doc = next(docs)
                parties = [
                    rules.Party(e.start_char, e.end_char, e.text) for e in doc.ents if e.label_ == nlp.PARTY
                ]
                ctx = rules.UnitContext(
                    clause, text, parties, nlp.find_modals(doc, self._modals), topic, last_subject
                )
                for party in parties:
                    out.entity("party", party.name, clause.clause_id)
                for draft in self._drafts(ctx, items):
                    out.triple(clause.clause_id, draft)
                last_subject = ctx.last_subject
            for ref in clause_references(clause, index, known_docs):
                references.append(ref.to_record(clause.clause_id))
                if ref.doc_id != tree.doc_id:
                    name = ref.title or ref.doc_id
                    out.entity("document", ref.doc_id, clause.clause_id)
                    record = out.entities[entity_id("document", ref.doc_id)]
                    if record.name == ref.doc_id and name != ref.doc_id:
                        record.aliases.append(record.name)
                        record.name = name
                    elif name not in (record.name, *record.aliases):
                        record.aliases.append(name)
        self._concept_mentions(tree.clauses, out)
        return Extraction(
            triples=list(out.triples.values()),
            entities=list(out.entities.values()),
            references=references,
            mentions=sorted(out.mentions),
        )

    @staticmethod
    def _units(clause: ClauseNode) -> list[tuple[str, list[ClauseItem]]]:
        """The clause body, then each item whose text the body does not already contain."""
        body = strip_number(clause.text)
        units = [(body, clause.items)]
        units += [(item.text, []) for item in clause.items if item.text and item.text not in body]
        return units

    @staticmethod
    def _drafts(ctx: rules.UnitContext, items: list[ClauseItem]) -> list[rules.Draft]:
        drafts: list[rules.Draft] = []
        conditions_done = False
        # a colon ends a rule sentence: the lead-in of a list (同时满足下列条件：) is a unit of its own
        for sentence in sentence_spans(ctx.text, colon=True, keep_end=False):
            drafts += rules.definitions(ctx, sentence)
            if not conditions_done:
                found = rules.conditions(ctx, sentence, items)
                conditions_done = bool(found)
                drafts += found
            drafts += rules.obligations(ctx, sentence)
            drafts += rules.responsibilities(ctx, sentence)
            drafts += rules.quantities(ctx, sentence)
        return drafts

    @staticmethod
    def _concept_mentions(clauses: list[ClauseNode], out: _Collector) -> None:
        """Every clause that uses a term defined in the document mentions its concept."""
        concepts = [e for e in out.entities.values() if e.type == "concept" and len(e.name) >= 2]
        for clause in clauses:
            for concept in concepts:
                if concept.name in clause.text:
                    out.mentions.add((clause.clause_id, concept.entity_id))
