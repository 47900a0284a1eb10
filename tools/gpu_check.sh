#!/usr/bin/env bash
# The GPU check in one line on a lent GPU machine (Python 3.12 with torch, transformers, accelerate, no network):
#   bash tools/gpu_check.sh OUT_DIR [extra tools.gpu_check options]
# Installs the wheels carried in .gpu/wheels (optimum-quanto), reads data from .gpu/shared (both made here by
# `make gpu-check-prepare`), builds the random-full stand-in and measures into OUT_DIR (≈ 7 minutes on one H100).
# One part of at most 8 minutes: int8 + lean trunk at 3,056 residues, twice in one process, under a T4's cap:
#   bash tools/gpu_check.sh OUT_DIR --plan t4-3056
set -euo pipefail
out=${1:?usage: tools/gpu_check.sh OUT_DIR [options]}
shift
cd "$(dirname "$0")/.."
mkdir -p "$out"
if compgen -G ".gpu/wheels/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu-check-site \
    .gpu/wheels/*.whl || python3 -c "import sys, zipfile; [zipfile.ZipFile(w).extractall('/tmp/gpu-check-site') for w in sys.argv[1:]]" \
    .gpu/wheels/*.whl  # a wheel is a zip: unpacked, it imports without pip
  export PYTHONPATH=/tmp/gpu-check-site${PYTHONPATH:+:$PYTHONPATH}
fi
export ESMFOLD_DATA=${ESMFOLD_DATA:-$PWD/.gpu/shared} PYTHONUNBUFFERED=1 TQDM_DISABLE=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/nvidia-smi.txt"
exec python3 -m tools.gpu_check --out "$out" "$@"
