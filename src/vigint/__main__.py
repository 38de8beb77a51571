"""Lets `python -m vigint` run the command line."""

from vigint.admin.cli import main

raise SystemExit(main())
