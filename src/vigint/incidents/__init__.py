"""Incidents: motion events recorded as incidents with a clip, verified by an AI provider, kept for a
while."""
