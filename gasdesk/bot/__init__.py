"""Resident-facing bot: understanding, dialogue and replies."""
