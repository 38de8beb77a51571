"""Ingest: the server, its connections and their admission, hello authentication and revocation, HTTP."""
