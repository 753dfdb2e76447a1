#!/usr/bin/env bash
# Curio's test command. Makes sure a PostgreSQL server answers (on a fresh machine without one it
# installs Debian's postgresql and starts a throwaway cluster), creates a fresh database for this
# run, exports DATABASE_URL and runs the whole suite. Extra arguments go to the test runner.
set -euo pipefail
cd "$(dirname "$0")/.."

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
export PGHOST PGPORT PGUSER

log() { printf '[test.sh] %s\n' "$*" >&2; }

answers() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -h "$PGHOST" -p "$PGPORT" -q
  else
    (exec 3<>"/dev/tcp/$PGHOST/$PGPORT") 2>/dev/null
  fi
}

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && echo "$dir"
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_postgres() {
  if answers; then return; fi
  log "no PostgreSQL answers on $PGHOST:$PGPORT; providing one"
  if [ -z "$(pg_bin)" ] || ! command -v psql >/dev/null 2>&1; then
    log "installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
  fi
  # The package may have started its own cluster.
  for _ in 1 2 3 4 5; do answers && return; sleep 1; done
  local bin data
  bin=$(pg_bin)
  data=$(mktemp -d /tmp/curio-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then chown postgres: "$data"; fi
  log "starting a throwaway cluster in $data"
  as_postgres "$bin/initdb" -D "$data" -A trust -U "$PGUSER" >/dev/null
  as_postgres "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-p $PGPORT -c listen_addresses=$PGHOST -k $data" start >/dev/null
  answers || { log "PostgreSQL did not start; see $data/server.log"; exit 1; }
  STARTED_DATA=$data
}

STARTED_DATA=""

ensure_postgres

RUN_DB="curio_test_$(date +%s)_$$"
psql -q -d postgres -c "CREATE DATABASE \"$RUN_DB\"" >/dev/null
export DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$RUN_DB"
log "DATABASE_URL=$DATABASE_URL"

stop_started() {
  if [ -n "$STARTED_DATA" ]; then
    as_postgres "$(pg_bin)/pg_ctl" -D "$STARTED_DATA" -m fast stop >/dev/null || true
  fi
}

cleanup() {
  if [ "${KEEP_TEST_DB:-}" = 1 ]; then stop_started; return; fi
  # Tests make one database per test, named after the run's database.
  psql -qAt -d postgres -c "SELECT datname FROM pg_database WHERE datname LIKE '${RUN_DB}%'" |
    while read -r db; do psql -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null || true; done
  stop_started
}
trap cleanup EXIT

# helm and kubectl for the chart tests (tests/chart.rs): HELM/KUBECTL if set; else helm from
# PATH or, failing that, the static binaries from npm (scripts/tools.sh); kubectl is always the
# bundled one (v1.35), so the dry run does not depend on whatever kubectl a machine has.
if [ -z "${HELM:-}" ]; then
  HELM=$(command -v helm || scripts/tools.sh helm)
fi
KUBECTL=${KUBECTL:-$(scripts/tools.sh kubectl)}
export HELM KUBECTL
log "HELM=$HELM KUBECTL=$KUBECTL"

status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@" || status=$?
else
  cargo test --workspace --no-fail-fast "$@" || status=$?
fi

# The browser tests (tests/ui): Debian's Chromium, installed when missing, driven by
# playwright-core, pages checked with axe-core (both from tests/ui/package-lock.json). They run
# the curio binary the suite above built. Screenshots land in target/ui-screenshots/.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian's ${missing[*]} for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
(cd tests/ui && npm ci --no-audit --no-fund --loglevel=error)
target_dir=${CARGO_TARGET_DIR:-target}
CURIO_BIN="$target_dir/debug/curio" CHROMIUM=$(command -v chromium) \
  node --test --test-concurrency=1 --test-reporter=spec tests/ui/ui.test.mjs || status=$?

# The acceptance smoke (docs/slo.md): 10 tenants read for 60 s while their catalogs change,
# through a PostgreSQL restart (a server the harness starts itself) and a restart on an empty
# database, while a noisy tenant rewrites 2,000 assets every 20 s and files 50 RefreshJobs at
# once. It fails on a cross-tenant byte, a refused request that was served, a lost asset or
# job, or a duplicate job; its evidence goes to $target_dir/acceptance-smoke/.
cargo build --quiet --bin curio-acceptance
"$target_dir/debug/curio-acceptance" --tenants 10 --assets-per-tenant 200 --duration 60s \
  --rate 20 --noisy-assets 2000 --noisy-every 20s --noisy-jobs 50 \
  --out "$target_dir/acceptance-smoke" >/dev/null || status=$?
if [ -f "$target_dir/acceptance-smoke/report.md" ]; then sed -n '1,20p' "$target_dir/acceptance-smoke/report.md"; fi
exit "$status"
