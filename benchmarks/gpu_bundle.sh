#!/usr/bin/env bash
# Makes gpu_bundle/ on a networked machine: what benchmarks/gpu_run.sh needs on a GPU host that has
# JAX (CUDA), flax, optax, orbax-checkpoint, torch, timm and einops but no network.
#
#   benchmarks/gpu_bundle.sh                                    # their repository from GitHub
#   AUTHORS_SOURCE=DIR benchmarks/gpu_bundle.sh                 # from a clone or bare mirror of it
#
# gpu_bundle/ (git-ignored; GPU_BUNDLE names another folder) then holds
#   SSync/    wjun0830/SSync at the pinned commit (PIN), as `git archive` writes it
#   PIN       that commit and where it came from
#   wheels/   the pure-Python wheels such a host lacks, with no dependencies resolved:
#             their pytorch-lightning 1.9.5, torchmetrics < 1.5 (and lightning-utilities),
#             omegaconf, webdataset (and braceexpand), and our ml-collections
# and its size is printed (it must stay under 64 MiB). Copy the repository with gpu_bundle/ in it
# to the GPU host and run benchmarks/gpu_run.sh there.
set -euo pipefail
if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
cd "$(dirname "$0")/.."
PIN=4cee41ac57b7d215170eeeebcb05d1d134cd9f12  # wjun0830/SSync, the code the fixtures were made with.
SOURCE=${AUTHORS_SOURCE:-https://github.com/wjun0830/SSync}
OUT=${GPU_BUNDLE:-gpu_bundle}
PYTHON=${PYTHON:-python3}
WHEELS=(
  pytorch-lightning==1.9.5 torchmetrics==1.4.3 lightning-utilities==0.15.3
  omegaconf==2.4.0 webdataset==1.0.2 braceexpand==0.1.7 ml-collections==1.1.0
)
LIMIT_MIB=64

rm -rf "$OUT"
mkdir -p "$OUT/SSync" "$OUT/wheels"
clone=$(mktemp -d)
trap 'rm -rf "$clone"' EXIT
git clone --quiet --bare "$SOURCE" "$clone/SSync.git"
git --git-dir="$clone/SSync.git" archive "$PIN" | tar -x -C "$OUT/SSync"
echo "$PIN $SOURCE" > "$OUT/PIN"
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --dest "$OUT/wheels" "${WHEELS[@]}"
(cd "$OUT/wheels" && ls -1 *.whl) > "$OUT/MANIFEST"
kib=$(du -sk "$OUT" | cut -f1)
echo "made $OUT: their repository at ${PIN:0:12} and $(wc -l < "$OUT/MANIFEST") wheels, $((kib / 1024)) MiB ($kib KiB)"
if (( kib > LIMIT_MIB * 1024 )); then
  echo "error: $OUT is over $LIMIT_MIB MiB" >&2
  exit 1
fi
