"""CLI command groups kept out of kgqa/cli.py, each registered there."""
