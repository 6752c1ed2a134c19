"""kgqa: knowledge-graph-augmented QA for finance compliance (composition root)."""

__version__ = "0.1.0"
