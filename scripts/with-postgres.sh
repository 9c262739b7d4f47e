#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL cluster on a Unix socket in a temp dir,
# with GASDESK_TEST_DATABASE_URL pointing at it; the cluster is stopped and removed afterwards.
set -euo pipefail
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$PGBIN" ] || { echo "PostgreSQL server not installed (make test-deps)"; exit 1; }
WORK=$(mktemp -d /tmp/gasdesk-pg.XXXXXX)
RUNAS=()
if [ "$(id -u)" -eq 0 ]; then
  # initdb refuses to run as root: use the postgres system user (created by the Debian package).
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$WORK"
  RUNAS=(runuser -u postgres --)
fi
cleanup() {
  "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
"${RUNAS[@]}" "$PGBIN/initdb" -D "$WORK/data" -U gasdesk --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$WORK/data" -w -l "$WORK/log" \
  -o "-k $WORK -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
"$PGBIN/createdb" -h "$WORK" -U gasdesk gasdesk_test
export GASDESK_TEST_DATABASE_URL="postgresql+asyncpg://gasdesk@/gasdesk_test?host=$WORK"
echo "PostgreSQL test cluster at $WORK"
"$@"
