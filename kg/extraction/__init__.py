"""Rule-based triple extraction from DocumentTrees (spaCy + regexes); see :mod:`kg.triples`."""

from kg.extraction.extractor import RuleTripleExtractor, entity_id, triple_id

__all__ = ["RuleTripleExtractor", "entity_id", "triple_id"]
