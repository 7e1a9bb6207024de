#!/usr/bin/env bash
# Trains on one GPU host: one process that uses all its visible GPUs.
set -euo pipefail
# shellcheck source=launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
SCRIPT_NAME="launch/gpu/train.sh"

usage() {
    cat <<'EOF'
Usage: launch/gpu/train.sh --workdir DIR [options] [--config.KEY=VALUE ...]

Runs `python main.py --config CONFIG --workdir WORKDIR [overrides]` from the repository root in
the foreground: one process sees every visible GPU and the global batch
(config.data.global_batch_size) is split evenly over them, so it must divide by their number.
Re-running the same command resumes from WORKDIR's latest checkpoint.

Options (flags win over the environment variables in brackets; --opt=value works too):
  --workdir DIR         directory for the config, checkpoints and TensorBoard events [WORKDIR]
  --config FILE         config file, relative to the repository (default: configs/movi_c.py;
                        FILE:base for the variant) [CONFIG]
  --data-dir DIR        sets --config.data.data_dir [DATA_DIR]
  --config.KEY=VALUE    any config override, passed through (as is everything after --)
  --gpus LIST           GPU indices to use, e.g. 0,1 (sets CUDA_VISIBLE_DEVICES; default: all)
  --venv DIR            virtualenv to run in (default: .venv in the repository) [VENV]
  --install             first create the virtualenv if missing and install requirements.txt and
                        jax[cuda12] of the version requirements.txt pins
  --python PYTHON       interpreter that creates the virtualenv (default: python3.11)
  --dry-run             print the commands instead of running them
  -h, --help            show this help
Relative --workdir, --data-dir and --venv are taken from the current directory.

Example:
  launch/gpu/train.sh --install --gpus 0,1 --workdir workdirs/movi_c \
      --data-dir ~/tensorflow_datasets --config.data.num_workers=16
EOF
}

absolute() {  # PATH: PATH from the current directory, unless already absolute or a URL (gs://...).
    if [[ $1 == /* || $1 == *://* ]]; then
        printf '%s' "$1"
    else
        printf '%s/%s' "$PWD" "$1"
    fi
}

workdir="${WORKDIR:-}"
config="${CONFIG:-configs/movi_c.py}"
data_dir="${DATA_DIR:-}"
gpus=""
venv="${VENV:-$REPO_ROOT/.venv}"
install=0
python="python3.11"
overrides=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --config.*) overrides+=("$1"); shift ;;
        --) shift; overrides+=("$@"); break ;;
        --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
        --workdir) need_value "$@"; workdir=$2; shift 2 ;;
        --config) need_value "$@"; config=$2; shift 2 ;;
        --data-dir) need_value "$@"; data_dir=$2; shift 2 ;;
        --gpus) need_value "$@"; gpus=$2; shift 2 ;;
        --venv) need_value "$@"; venv=$2; shift 2 ;;
        --install) install=1; shift ;;
        --python) need_value "$@"; python=$2; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage_error "unknown argument '$1' (config overrides take the form --config.KEY=VALUE)" ;;
    esac
done

require --workdir "$workdir" WORKDIR
gpus_pattern='^[0-9]+(,[0-9]+)*$'
if [[ -n $gpus && ! $gpus =~ $gpus_pattern ]]; then
    usage_error "--gpus '$gpus' is not a comma-separated list of GPU indices like 0,1"
fi
workdir="$(absolute "$workdir")"
venv="$(absolute "$venv")"
if [[ -n $data_dir ]]; then
    overrides=("--config.data.data_dir=$(absolute "$data_dir")" ${overrides[@]+"${overrides[@]}"})
fi

run cd "$REPO_ROOT"
if ((install)); then
    if [[ ! -x $venv/bin/python ]]; then
        require_tool "$python" "install Python 3.11 or pass --python"
        run "$python" -m venv "$venv"
    fi
    run "$venv/bin/python" -m pip install -r requirements.txt "jax[cuda12]==$(pinned_jax_version)"
elif [[ ! -x $venv/bin/python ]]; then
    usage_error "no virtualenv at $venv; pass --install to create it, or --venv DIR"
fi
environment=()
if [[ -n $gpus ]]; then
    environment=(env "CUDA_VISIBLE_DEVICES=$gpus")
fi
run ${environment[@]+"${environment[@]}"} "$venv/bin/python" main.py --config "$config" --workdir "$workdir" \
    ${overrides[@]+"${overrides[@]}"}
