"""Alerts: the outbox and its delivery by email and webhook, with signed links to clips."""
