"""Automatic call distribution (ACD): skill groups, agent presence, hand-off rules and assignment."""
