"""Background jobs: durable, retried, after-commit; run by a worker loop in each app process or `gasdesk worker`."""
