"""Supervisors' reports: figures built from the analytics roll-ups (``gasdesk/analytics``), shown as pages
with charts and exported as xlsx and PDF."""
