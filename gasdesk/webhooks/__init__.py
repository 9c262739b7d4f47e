"""Outbound webhooks to the utility's systems: signed (HMAC-SHA256), retried with backoff, logged."""
