"""Demo data for trying gasdesk out."""
