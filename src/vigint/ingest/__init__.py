"""Ingest: one connection's path (admission, hello authentication and revocation, its session), the node's
streams."""
