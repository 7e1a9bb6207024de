#!/usr/bin/env bash
# Training throughput of the MOVi-C recipe on this host's accelerators, float32 and bfloat16.
#
#   benchmarks/accelerator.sh                    # configs/movi_c.py, 64 clips per device, 10 steps each
#   benchmarks/accelerator.sh --per_device_batch 32 --config configs/movi_e.py
#
# Prints seconds per step, clips per second, the trainable part's FLOP/s and MFU, and peak device
# memory (benchmarks/train_speed.py says how each is measured). Run from the repository root with
# the virtualenv that launch/gpu/train.sh --install or launch/tpu/setup.sh made.
set -euo pipefail
if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" -m benchmarks.train_speed --config configs/movi_c.py --per_device_batch 64 \
  --dtypes float32,bfloat16 "$@"
