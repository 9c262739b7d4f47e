"""Operations: structured logs with request and conversation ids (``logs``), Prometheus metrics (``metrics``
definitions, ``gauges`` read from the database at scrape time, ``/metrics`` in ``api``), and the middleware
that ties a request to both (``middleware``). docs/operations.md."""
