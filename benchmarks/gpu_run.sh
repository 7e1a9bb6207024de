#!/usr/bin/env bash
# Issue 30's accelerator run in one command, one JSON: our MOVi-C step's speed and MFU
# (benchmarks/train_speed.py) and our step against the authors' on the same device
# (benchmarks/gpu_vs_authors.py), within 8 minutes on one H100, compilation included.
#
#   benchmarks/gpu_run.sh [--out FILE] [--budget_s S]   # on the GPU host (default FILE: gpu_run.json)
#   benchmarks/gpu_run.sh --smoke --out FILE            # the same at tiny shapes, e.g. on a CPU
#
# Installs gpu_bundle/'s wheels (benchmarks/gpu_bundle.sh makes it) offline into gpu_bundle/site,
# put first on PYTHONPATH (the host's jax and torch are used as they are), then runs
# benchmarks/gpu_run.py. Environment: PYTHON (ours, default python3), AUTHORS_PYTHON (theirs,
# default PYTHON), GPU_BUNDLE (default gpu_bundle), GPU_SITE (default GPU_BUNDLE/site).
set -euo pipefail
if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BUNDLE=${GPU_BUNDLE:-gpu_bundle}
OUT=gpu_run.json
args=()
while (( $# )); do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --out=*) OUT=${1#--out=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

if [[ -d "$BUNDLE/wheels" ]]; then
  SITE=${GPU_SITE:-$BUNDLE/site}
  if [[ ! -f "$SITE/.installed" ]]; then
    mkdir -p "$SITE"
    wheels=("$BUNDLE"/wheels/*.whl)
    if ! PIP_REQUIRE_VIRTUALENV=0 "$PYTHON" -m pip install --quiet --no-index --no-deps --target "$SITE" \
        "${wheels[@]}"; then
      echo "pip could not install the wheels; unpacking them (they are pure Python)"
      "$PYTHON" -c 'import sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]' \
        "$SITE" "${wheels[@]}"
    fi
    touch "$SITE/.installed"
  fi
  SITE=$(cd "$SITE" && pwd)
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  echo "bundle: $BUNDLE ($(cat "$BUNDLE/PIN" 2> /dev/null || echo 'no PIN')), wheels in $SITE"
else
  echo "bundle: none at $BUNDLE (the authors' side will be skipped)"
fi
exec "$PYTHON" -m benchmarks.gpu_run --out "$OUT" --authors_repo "$BUNDLE/SSync" \
  --authors_python "${AUTHORS_PYTHON:-$PYTHON}" ${args[@]+"${args[@]}"}
