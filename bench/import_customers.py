"""Measure `gasdesk import customers` on a generated file (default 100,000 rows) against a fresh SQLite DB.

Usage: python bench/import_customers.py [--rows 100000] [--encoding gbk] [--database-url URL]
Prints rows/s for the first import and for the idempotent re-import.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--encoding", default="utf-8", choices=["utf-8", "gbk"])
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file in a temp dir")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="gasdesk-bench-"))
    os.environ["GASDESK_DATABASE_URL"] = args.database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    from gasdesk.audit.service import Actor
    from gasdesk.customers.importer import import_customers
    from gasdesk.db import dispose_engine
    from gasdesk.migrations.runner import upgrade
    from gasdesk.seed.demo import demo_rows, write_csv

    upgrade()
    path = tmp / "customers.csv"
    started = time.perf_counter()
    write_csv(demo_rows(args.rows, seed=99), path, encoding=args.encoding)
    print(f"generated {args.rows} rows ({path.stat().st_size / 1e6:.1f} MB, {args.encoding}) "
          f"in {time.perf_counter() - started:.1f}s")

    async def run(label: str) -> None:
        report = await import_customers(path, Actor.system("bench"))
        print(f"{label}: {report.total} rows in {report.seconds:.1f}s = {report.total / report.seconds:,.0f} rows/s "
              f"(created accounts {report.created_accounts}, updated {report.updated_accounts}, "
              f"unchanged {report.unchanged}, rejected {report.rejected})")
        await dispose_engine()

    asyncio.run(run("first import"))
    asyncio.run(run("re-import (idempotent)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
