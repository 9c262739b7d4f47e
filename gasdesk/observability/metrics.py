"""The Prometheus metrics of one process (prometheus-client's default registry, no multiprocess mode: each
process serves its own ``/metrics`` and Prometheus scrapes every process; docs/operations.md).

Only definitions live here, so any module can count something without importing the web app or the database.
Labels are bounded sets: route templates (never raw paths), status classes, socket kinds, skill group codes.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from gasdesk import __version__

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_LATENCY = Histogram(
    "gasdesk_http_request_duration_seconds",
    "HTTP request latency by route template and status class",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
WS_OPEN = Gauge(
    "gasdesk_websocket_connections",
    "Open WebSocket connections of this process by kind "
    "(resident, staff = agent console, notify = staff pages' bell, wall, other)",
    ["kind"],
)
WS_CLOSED = Counter(
    "gasdesk_websocket_closed_total",
    "Accepted WebSocket connections that ended, by kind and by whom: client "
    "(1000/1001), abnormal (any other client code, e.g. 1006 for a lost connection) or server",
    ["kind", "by"],
)
WS_DROPPED = Counter(
    "gasdesk_websocket_dropped_total",
    "Sockets the hub dropped because they did not read (full send queue or send time-out)",
    ["kind"],
)
BOT_UNDERSTAND = Histogram(
    "gasdesk_bot_understand_seconds",
    "Time the bot takes to read one resident message (understanding in context)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
# Read from the database when /metrics is scraped (gauges.py), at most every few seconds per process.
QUEUE_WAITING = Gauge(
    "gasdesk_queue_conversations", "Conversations waiting for an agent, per skill group", ["skill_group"]
)
QUEUE_OLDEST_WAIT = Gauge(
    "gasdesk_queue_oldest_wait_seconds",
    "How long the longest-waiting conversation of each skill group has waited",
    ["skill_group"],
)
JOB_LAG = Gauge("gasdesk_jobs_lag_seconds", "Age of the oldest pending job that is due (0: none)")
JOBS_PENDING_DUE = Gauge("gasdesk_jobs_due", "Pending jobs that are due")
JOBS_FAILED = Gauge("gasdesk_jobs_failed", "Jobs that failed for good (status failed)")
DISK_FREE = Gauge(
    "gasdesk_disk_free_bytes",
    "Free bytes on the file system of var_dir, the upload folder and the SQLite file",
    ["path"],
)
DISK_TOTAL = Gauge("gasdesk_disk_total_bytes", "Size of those file systems", ["path"])
BUILD_INFO = Gauge("gasdesk_build_info", "Always 1; the running version as a label", ["version"])
BUILD_INFO.labels(__version__).set(1)
