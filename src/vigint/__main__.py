"""Lets `python -m vigint` run the command line."""

from vigint.cli.main import main

raise SystemExit(main())
