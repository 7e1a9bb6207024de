#!/usr/bin/env bash
# Starts, follows or stops training on every worker of a Cloud TPU VM.
# shellcheck disable=SC2016  # the remote shell code is single-quoted on purpose: it expands there.
set -euo pipefail
# shellcheck source=launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
SCRIPT_NAME="launch/tpu/train.sh"

usage() {
    cat <<'EOF'
Usage: launch/tpu/train.sh --name NAME --zone ZONE --workdir gs://BUCKET/PATH [options] [--config.KEY=VALUE ...]
       launch/tpu/train.sh --name NAME --zone ZONE --logs [--worker N|all]
       launch/tpu/train.sh --name NAME --zone ZONE --stop

Starts `python main.py --config CONFIG --workdir WORKDIR --distributed [overrides]` on all workers
at once (gcloud compute tpus tpu-vm ssh --worker=all), in the background with nohup; each worker
appends to ~/REMOTE_DIR/logs/train_$(hostname).log and refuses to start while its previous run is
still alive. Run launch/tpu/setup.sh first.

Resuming: checkpoints go to WORKDIR. After a preemption, recreate the TPU (create.sh, setup.sh) and
run the same train.sh command: training continues from WORKDIR's latest checkpoint.

Options (flags win over the environment variables in brackets; --opt=value works too):
  --name NAME           TPU VM name [TPU_NAME]
  --zone ZONE           its zone [ZONE]
  --project PROJECT     Google Cloud project (default: gcloud's configured one) [PROJECT]
  --workdir GS_PATH     gs:// directory for the config, checkpoints and TensorBoard events; it
                        must be shared by all workers and outlive the TPU [WORKDIR]
  --config FILE         config file, relative to the repository (default: configs/movi_c.py;
                        FILE:base for the variant) [CONFIG]
  --data-dir DIR        sets --config.data.data_dir: gs:// or a directory on every worker [DATA_DIR]
  --config.KEY=VALUE    any config override, passed through (as is everything after --)
  --remote-dir DIR      code directory on the workers, relative to home (default: ssync-jax)
                        [REMOTE_DIR]
  --logs                follow a worker's log instead of starting (Ctrl-C stops following)
  --worker N|all        the worker(s) --logs follows (default: 0)
  --stop                send SIGTERM to every worker's training process: it saves a checkpoint,
                        then exits
  --dry-run             print the gcloud command instead of running it
  -h, --help            show this help

Example:
  launch/tpu/train.sh --name ssync-v4 --zone us-central2-b \
      --workdir gs://my-bucket/workdirs/movi_c --data-dir gs://my-bucket/tensorflow_datasets \
      --config.checkpoint_every_steps=1000
EOF
}

tpu_name="${TPU_NAME:-}"
zone="${ZONE:-}"
project="${PROJECT:-}"
workdir="${WORKDIR:-}"
config="${CONFIG:-configs/movi_c.py}"
data_dir="${DATA_DIR:-}"
remote_dir="${REMOTE_DIR:-ssync-jax}"
mode=start
worker=""
overrides=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --config.*) overrides+=("$1"); shift ;;
        --) shift; overrides+=("$@"); break ;;
        --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
        --name) need_value "$@"; tpu_name=$2; shift 2 ;;
        --zone) need_value "$@"; zone=$2; shift 2 ;;
        --project) need_value "$@"; project=$2; shift 2 ;;
        --workdir) need_value "$@"; workdir=$2; shift 2 ;;
        --config) need_value "$@"; config=$2; shift 2 ;;
        --data-dir) need_value "$@"; data_dir=$2; shift 2 ;;
        --remote-dir) need_value "$@"; remote_dir=$2; shift 2 ;;
        --logs) mode=logs; shift ;;
        --worker) need_value "$@"; worker=$2; shift 2 ;;
        --stop) mode=stop; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage_error "unknown argument '$1' (config overrides take the form --config.KEY=VALUE)" ;;
    esac
done

check_tpu_target "$tpu_name" "$zone"
worker_pattern='^([0-9]+|all)$'
if [[ -n $worker && $mode != logs ]]; then
    usage_error "--worker applies to --logs only (training and --stop address all workers)"
elif [[ ! ${worker:=0} =~ $worker_pattern ]]; then
    usage_error "--worker '$worker' is not a worker number or 'all'"
fi
if [[ $mode == start ]]; then
    require --workdir "$workdir" WORKDIR
    if [[ $workdir != gs://?* ]]; then
        usage_error "--workdir '$workdir' is not a gs:// path (all workers write there; it must outlive the TPU)"
    fi
    if [[ -n $data_dir ]]; then
        overrides=("--config.data.data_dir=$data_dir" ${overrides[@]+"${overrides[@]}"})
    fi
fi
require_tool gcloud "install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install"
tpu_flags "$zone" "$project"

quoted_dir="$(shell_quote "$remote_dir")"
# Remote shell code: $(hostname), $! and the pid file are read on the worker.
running='[ -f logs/train.pid ] && kill -0 "$(cat logs/train.pid)" 2>/dev/null'
log='"logs/train_$(hostname).log"'
case $mode in
    start)
        train_command="$(quote_command .venv/bin/python main.py --config "$config" --workdir "$workdir" \
            --distributed ${overrides[@]+"${overrides[@]}"})"
        remote="cd $quoted_dir || exit 1; "
        remote+='test -x .venv/bin/python || { echo "$(hostname): run launch/tpu/setup.sh first" >&2; exit 1; }; '
        remote+="mkdir -p logs || exit 1; if $running; then "
        remote+='echo "$(hostname): still running (pid $(cat logs/train.pid)); stop it with --stop" >&2; exit 1; fi; '
        remote+="nohup $train_command >> $log 2>&1 < /dev/null & "
        remote+='echo $! > logs/train.pid; echo "$(hostname): training started, pid $!"'
        run gcloud compute tpus tpu-vm ssh "$tpu_name" "${TPU_FLAGS[@]}" --worker=all --command "$remote"
        note "Each worker logs to ~/$remote_dir/logs/train_<hostname>.log. Follow worker 0:"
        note "  $(quote_command "$SCRIPT_NAME" --logs --name "$tpu_name" "${TPU_FLAGS[@]}")"
        ;;
    logs)
        run gcloud compute tpus tpu-vm ssh "$tpu_name" "${TPU_FLAGS[@]}" "--worker=$worker" \
            --command "cd $quoted_dir && tail -n 100 -F $log"
        ;;
    stop)
        remote="cd $quoted_dir || exit 1; if $running; then "
        remote+='kill -TERM "$(cat logs/train.pid)" && echo "$(hostname): sent SIGTERM to pid $(cat logs/train.pid)"; '
        remote+='else echo "$(hostname): no training running"; fi'
        run gcloud compute tpus tpu-vm ssh "$tpu_name" "${TPU_FLAGS[@]}" --worker=all --command "$remote"
        ;;
esac
