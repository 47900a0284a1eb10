#!/usr/bin/env bash
# Here, before a GPU machine is lent: put what the GPU check needs and the machine lacks into .gpu/ (git-ignored),
# to be carried there: optimum-quanto as a Python 3.12 wheel, and the data files it reads from ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${ESMFOLD_DATA:-../shared}
rm -rf .gpu && mkdir -p .gpu/wheels .gpu/shared/esmfold_v1 .gpu/shared/sequences
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .gpu/wheels \
  "optimum-quanto==$(sed -n 's/^optimum-quanto==//p' requirements.txt)"
cp "$shared/esmfold_v1/config.json" .gpu/shared/esmfold_v1/
cp "$shared/sequences/P0DTC2_spike.fasta" "$shared/sequences/1CA2_seed.fasta" .gpu/shared/sequences/
du -sh .gpu
