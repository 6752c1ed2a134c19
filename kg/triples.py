"""Triple extraction: the stable import path of the rule extractor.

The implementation lives in :mod:`kg.extraction` (pipeline, rules, text helpers); this module
keeps ``from kg.triples import RuleTripleExtractor`` working for the ingestion service.
"""

from kg.extraction import RuleTripleExtractor, entity_id, triple_id

__all__ = ["RuleTripleExtractor", "entity_id", "triple_id"]
