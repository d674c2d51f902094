#!/usr/bin/env bash
# Run tests/cuda under compute-sanitizer's memcheck and racecheck (on a machine
# with a GPU and the CUDA toolkit). Exits non-zero if either tool reports.
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in memcheck racecheck; do
  echo "== compute-sanitizer --tool $tool"
  compute-sanitizer --tool "$tool" --error-exitcode 1 --target-processes all \
    python -m pytest -q -p no:cacheprovider tests/cuda
done
