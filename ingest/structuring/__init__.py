"""Building the DocumentTree: numbering patterns, the block walk, items and tables.

The entry point is :func:`ingest.structure.build_tree`; the modules here are its parts.
"""
