#!/usr/bin/env bash
# Deletes a Cloud TPU VM (or the queued resource that holds it), after asking.
set -euo pipefail
# shellcheck source=launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
SCRIPT_NAME="launch/tpu/delete.sh"

usage() {
    cat <<'EOF'
Usage: launch/tpu/delete.sh --name NAME --zone ZONE [--queued] [--yes] [options]

Deletes the TPU VM (gcloud compute tpus tpu-vm delete), or with --queued the queued resource of
that name together with its TPU (gcloud compute tpus queued-resources delete --force). Billing
stops once it is gone. The workers' disks go with it (code, virtualenv, logs); the workdir in Cloud
Storage stays, so a new TPU resumes from it. Asks for confirmation unless --yes.

Options (flags win over the environment variables in brackets; --opt=value works too):
  --name NAME           TPU VM (and queued resource) name [TPU_NAME]
  --zone ZONE           its zone [ZONE]
  --project PROJECT     Google Cloud project (default: gcloud's configured one) [PROJECT]
  --queued              it was created with create.sh --queued
  --yes                 do not ask
  --dry-run             print the gcloud command instead of running it (asks nothing)
  -h, --help            show this help

Example:
  launch/tpu/delete.sh --name ssync-v4 --zone us-central2-b
EOF
}

tpu_name="${TPU_NAME:-}"
zone="${ZONE:-}"
project="${PROJECT:-}"
queued=0
assume_yes=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
        --name) need_value "$@"; tpu_name=$2; shift 2 ;;
        --zone) need_value "$@"; zone=$2; shift 2 ;;
        --project) need_value "$@"; project=$2; shift 2 ;;
        --queued) queued=1; shift ;;
        --yes) assume_yes=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage_error "unknown argument '$1'" ;;
    esac
done

check_tpu_target "$tpu_name" "$zone"
require_tool gcloud "install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install"
tpu_flags "$zone" "$project"

if ((queued)); then
    what="queued resource $tpu_name and its TPU"
    # --quiet: gcloud would ask a second time.
    delete=(gcloud compute tpus queued-resources delete "$tpu_name" "${TPU_FLAGS[@]}" --force --quiet)
else
    what="TPU VM $tpu_name"
    delete=(gcloud compute tpus tpu-vm delete "$tpu_name" "${TPU_FLAGS[@]}" --quiet)
fi
if [[ $DRY_RUN != 1 && $assume_yes != 1 ]]; then
    answer=""
    read -r -p "Delete $what in $zone (its disks too)? [y/N] " answer || true
    if [[ $answer != y && $answer != Y && $answer != yes ]]; then
        note "Not deleted."
        exit 1
    fi
fi
run "${delete[@]}"
