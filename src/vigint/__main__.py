"""Lets `python -m vigint` run the command line."""

from vigint.cli import main

raise SystemExit(main())
