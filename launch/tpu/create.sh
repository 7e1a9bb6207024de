#!/usr/bin/env bash
# Creates a Cloud TPU VM for ssync-jax, or queues a request for one.
set -euo pipefail
# shellcheck source=launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
SCRIPT_NAME="launch/tpu/create.sh"

usage() {
    cat <<'EOF'
Usage: launch/tpu/create.sh --name NAME --zone ZONE --accelerator-type TYPE [options] [-- GCLOUD_FLAGS]

Creates a Cloud TPU VM (gcloud compute tpus tpu-vm create), or with --queued asks for one through
a queued resource (gcloud compute tpus queued-resources create ... --node-id NAME), which waits
until capacity is free. Then run launch/tpu/setup.sh.

Options (flags win over the environment variables in brackets; --opt=value works too):
  --name NAME              TPU VM name: lowercase letters, digits, hyphens [TPU_NAME]
  --zone ZONE              zone offering that TPU type, e.g. us-central2-b for v4 [ZONE]
  --accelerator-type TYPE  v4-N, v5litepod-N (v5e), v5p-N or v6e-N, e.g. v4-8 (one host),
                           v4-32 (four hosts) [ACCELERATOR_TYPE]
  --version RUNTIME        TPU software version; default by generation: v4 tpu-ubuntu2204-base,
                           v5litepod v2-alpha-tpuv5-lite, v5p v2-alpha-tpuv5, v6e v2-alpha-tpuv6e
                           [RUNTIME_VERSION]
  --project PROJECT        Google Cloud project (default: gcloud's configured one) [PROJECT]
  --spot                   Spot capacity: much cheaper, can be preempted at any time; a preempted
                           TPU must be deleted and created again (training resumes, see train.sh)
  --preemptible            the older, time-limited preemptible kind; not with --spot or --queued
  --queued                 request through a queued resource of the same name
  -- GCLOUD_FLAGS          the rest goes to gcloud as is, e.g. -- --service-account=EMAIL
  --dry-run                print the gcloud command instead of running it
  -h, --help               show this help

Example:
  launch/tpu/create.sh --name ssync-v4 --zone us-central2-b --accelerator-type v4-8 --spot
EOF
}

tpu_name="${TPU_NAME:-}"
zone="${ZONE:-}"
accelerator_type="${ACCELERATOR_TYPE:-}"
runtime_version="${RUNTIME_VERSION:-}"
project="${PROJECT:-}"
spot=0
preemptible=0
queued=0
gcloud_flags=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --) shift; gcloud_flags=("$@"); break ;;
        --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
        --name) need_value "$@"; tpu_name=$2; shift 2 ;;
        --zone) need_value "$@"; zone=$2; shift 2 ;;
        --accelerator-type) need_value "$@"; accelerator_type=$2; shift 2 ;;
        --version) need_value "$@"; runtime_version=$2; shift 2 ;;
        --project) need_value "$@"; project=$2; shift 2 ;;
        --spot) spot=1; shift ;;
        --preemptible) preemptible=1; shift ;;
        --queued) queued=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage_error "unknown argument '$1'" ;;
    esac
done

check_tpu_target "$tpu_name" "$zone"
require --accelerator-type "$accelerator_type" ACCELERATOR_TYPE
type_pattern='^(v4|v5litepod|v5p|v6e)-[1-9][0-9]*$'
if [[ ! $accelerator_type =~ $type_pattern ]]; then
    usage_error "--accelerator-type '$accelerator_type' is not v4-N, v5litepod-N, v5p-N or v6e-N (e.g. v4-8)"
fi
if ((spot && preemptible)); then
    usage_error "--spot and --preemptible exclude each other"
fi
if ((queued && preemptible)); then
    usage_error "--preemptible does not apply to --queued; use --spot"
fi
if [[ -z $runtime_version ]]; then
    case ${accelerator_type%-*} in
        v4) runtime_version=tpu-ubuntu2204-base ;;
        v5litepod) runtime_version=v2-alpha-tpuv5-lite ;;
        v5p) runtime_version=v2-alpha-tpuv5 ;;
        v6e) runtime_version=v2-alpha-tpuv6e ;;
    esac
fi
require_tool gcloud "install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install"
tpu_flags "$zone" "$project"

capacity=()
if ((spot)); then
    capacity=(--spot)
elif ((preemptible)); then
    capacity=(--preemptible)
fi
if ((queued)); then
    run gcloud compute tpus queued-resources create "$tpu_name" "${TPU_FLAGS[@]}" \
        "--accelerator-type=$accelerator_type" "--runtime-version=$runtime_version" \
        "--node-id=$tpu_name" ${capacity[@]+"${capacity[@]}"} ${gcloud_flags[@]+"${gcloud_flags[@]}"}
    describe="$(quote_command gcloud compute tpus queued-resources describe "$tpu_name" "${TPU_FLAGS[@]}")"
    note "Queued. Its state: $describe"
    note "Once it is ACTIVE: $(quote_command launch/tpu/setup.sh --name "$tpu_name" "${TPU_FLAGS[@]}")"
else
    run gcloud compute tpus tpu-vm create "$tpu_name" "${TPU_FLAGS[@]}" \
        "--accelerator-type=$accelerator_type" "--version=$runtime_version" \
        ${capacity[@]+"${capacity[@]}"} ${gcloud_flags[@]+"${gcloud_flags[@]}"}
    note "Next: $(quote_command launch/tpu/setup.sh --name "$tpu_name" "${TPU_FLAGS[@]}")"
fi
