"""The `vigint` command line: one module per command group, rendering in one place."""
