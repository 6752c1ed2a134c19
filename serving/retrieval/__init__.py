"""Retrieval over the clause graph."""
