"""Guided, multi-turn dialogue on top of the offline NLU: flows with slot filling, corrections and cancel."""
