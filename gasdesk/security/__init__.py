"""Cryptography for personal data at rest and password hashing."""
