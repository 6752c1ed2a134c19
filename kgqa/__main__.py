"""`python -m kgqa` runs the CLI (tests use it to run the exact interpreter of the venv)."""

from kgqa.cli import main

if __name__ == "__main__":  # not when a spawned worker process imports it
    main()
