"""Append-only audit log: who changed what, before and after."""
