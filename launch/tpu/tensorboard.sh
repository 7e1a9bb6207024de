#!/usr/bin/env bash
# TensorBoard for a run's workdir: on worker 0 of the TPU VM behind an ssh tunnel, or locally.
set -euo pipefail
# shellcheck source=launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
SCRIPT_NAME="launch/tpu/tensorboard.sh"

usage() {
    cat <<'EOF'
Usage: launch/tpu/tensorboard.sh --name NAME --zone ZONE --logdir gs://BUCKET/PATH [options]
       launch/tpu/tensorboard.sh --local --logdir gs://BUCKET/PATH [--port PORT]

Runs `tensorboard --logdir LOGDIR --port PORT` on worker 0 of the TPU VM (from the virtualenv
setup.sh made) and forwards the port over ssh (gcloud compute tpus tpu-vm ssh ... -- -L
PORT:localhost:PORT), so http://localhost:PORT shows it here until Ctrl-C. With --local it runs
`tensorboard` from your PATH instead, which reads gs:// with your own credentials
(gcloud auth application-default login) and needs TensorFlow installed (requirements.txt has it).

Options (flags win over the environment variables in brackets; --opt=value works too):
  --logdir PATH         the run's workdir (or a directory above several) [WORKDIR]
  --name NAME           TPU VM name [TPU_NAME]
  --zone ZONE           its zone [ZONE]
  --project PROJECT     Google Cloud project (default: gcloud's configured one) [PROJECT]
  --port PORT           port here and on the worker (default: 6006)
  --local               run TensorBoard on this machine; no TPU options needed
  --remote-dir DIR      code directory on the workers, relative to home (default: ssync-jax)
                        [REMOTE_DIR]
  --dry-run             print the command instead of running it
  -h, --help            show this help

Example:
  launch/tpu/tensorboard.sh --name ssync-v4 --zone us-central2-b --logdir gs://my-bucket/workdirs
EOF
}

tpu_name="${TPU_NAME:-}"
zone="${ZONE:-}"
project="${PROJECT:-}"
logdir="${WORKDIR:-}"
port=6006
local_run=0
remote_dir="${REMOTE_DIR:-ssync-jax}"
while [[ $# -gt 0 ]]; do
    case $1 in
        --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
        --logdir) need_value "$@"; logdir=$2; shift 2 ;;
        --name) need_value "$@"; tpu_name=$2; shift 2 ;;
        --zone) need_value "$@"; zone=$2; shift 2 ;;
        --project) need_value "$@"; project=$2; shift 2 ;;
        --port) need_value "$@"; port=$2; shift 2 ;;
        --local) local_run=1; shift ;;
        --remote-dir) need_value "$@"; remote_dir=$2; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage_error "unknown argument '$1'" ;;
    esac
done

require --logdir "$logdir" WORKDIR
check_port "$port"
if ((local_run)); then
    require_tool tensorboard "activate the virtualenv that has requirements.txt installed"
    note "TensorBoard: http://localhost:$port"
    run tensorboard --logdir "$logdir" --port "$port"
    exit 0
fi
check_tpu_target "$tpu_name" "$zone"
require_tool gcloud "install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install"
tpu_flags "$zone" "$project"
note "TensorBoard: http://localhost:$port (once it reports that it is serving; Ctrl-C stops it)"
remote="cd $(shell_quote "$remote_dir") && $(quote_command .venv/bin/tensorboard --logdir "$logdir" --port "$port")"
run gcloud compute tpus tpu-vm ssh "$tpu_name" "${TPU_FLAGS[@]}" --worker=0 --command "$remote" \
    -- -L "$port:localhost:$port"
