"""Proactive broadcasts to many residents (outage notices): set-based queueing, throttled draining."""
