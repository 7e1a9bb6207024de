#!/usr/bin/env bash
# Puts the code and a Python environment with JAX for TPU on every worker of a Cloud TPU VM.
set -euo pipefail
# shellcheck source=launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
SCRIPT_NAME="launch/tpu/setup.sh"

usage() {
    cat <<'EOF'
Usage: launch/tpu/setup.sh --name NAME --zone ZONE [options]

On every worker of the TPU VM (gcloud compute tpus tpu-vm ssh --worker=all):
  1. the code: this checkout's committed HEAD (git archive, copied with tpu-vm scp) unpacked into
     ~/REMOTE_DIR, or with --git-url a fetch of GIT_REF from that repository;
  2. Python: installs PYTHON (python3.11) with apt when the image lacks it;
  3. a virtualenv REMOTE_DIR/.venv with requirements.txt and jax[tpu] of the version
     requirements.txt pins (libtpu from the JAX release index);
  4. prints JAX's environment info, with the TPU devices it sees (fails while a training run
     holds the TPU).
Running it again updates the code in place and reuses the virtualenv. Uncommitted changes are not
copied: commit them first.

Options (flags win over the environment variables in brackets; --opt=value works too):
  --name NAME           TPU VM name [TPU_NAME]
  --zone ZONE           its zone [ZONE]
  --project PROJECT     Google Cloud project (default: gcloud's configured one) [PROJECT]
  --git-url URL         clone from URL on the workers instead of copying this checkout
  --git-ref REF         branch, tag or commit to check out with --git-url (default: main)
  --remote-dir DIR      code directory on the workers, relative to home (default: ssync-jax)
                        [REMOTE_DIR]
  --python PYTHON       interpreter for the virtualenv (default: python3.11)
  --dry-run             print the commands instead of running them
  -h, --help            show this help

Example:
  launch/tpu/setup.sh --name ssync-v4 --zone us-central2-b
EOF
}

tpu_name="${TPU_NAME:-}"
zone="${ZONE:-}"
project="${PROJECT:-}"
git_url=""
git_ref="main"
remote_dir="${REMOTE_DIR:-ssync-jax}"
python="python3.11"
while [[ $# -gt 0 ]]; do
    case $1 in
        --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
        --name) need_value "$@"; tpu_name=$2; shift 2 ;;
        --zone) need_value "$@"; zone=$2; shift 2 ;;
        --project) need_value "$@"; project=$2; shift 2 ;;
        --git-url) need_value "$@"; git_url=$2; shift 2 ;;
        --git-ref) need_value "$@"; git_ref=$2; shift 2 ;;
        --remote-dir) need_value "$@"; remote_dir=$2; shift 2 ;;
        --python) need_value "$@"; python=$2; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage_error "unknown argument '$1'" ;;
    esac
done

check_tpu_target "$tpu_name" "$zone"
python_pattern='^python3\.[0-9]+$'
if [[ ! $python =~ $python_pattern ]]; then
    usage_error "--python '$python' is not an interpreter name like python3.11"
fi
require_tool gcloud "install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install"
tpu_flags "$zone" "$project"
jax_version="$(pinned_jax_version)"

libtpu_index="https://storage.googleapis.com/jax-releases/libtpu_releases.html"
apt_get="sudo DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600"
dir="$(shell_quote "$remote_dir")"
# The workers' steps, POSIX sh joined with &&: their login shell runs them and stops at a failure.
if [[ -n $git_url ]]; then
    steps=("mkdir -p $dir" "cd $dir" "{ test -d .git || git init -q; }"
        "git fetch -q --depth=1 $(shell_quote "$git_url") $(shell_quote "$git_ref")"
        "git checkout -q -f --detach FETCH_HEAD")
else
    if [[ $DRY_RUN != 1 ]] && ! git -C "$REPO_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        fail "$REPO_ROOT is not a git checkout; pass --git-url URL to clone on the workers instead"
    fi
    if [[ -n "$(git -C "$REPO_ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
        note "Warning: uncommitted changes in $REPO_ROOT are not copied (the workers get HEAD)."
    fi
    tarball="${TMPDIR:-/tmp}/ssync-jax-$tpu_name.tar.gz"
    remote_tarball="ssync-jax-code.tar.gz"
    run git -C "$REPO_ROOT" archive --format=tar.gz "--output=$tarball" HEAD
    run gcloud compute tpus tpu-vm scp "$tarball" "$tpu_name:$remote_tarball" "${TPU_FLAGS[@]}" --worker=all
    steps=("mkdir -p $dir" "tar -xzf $remote_tarball -C $dir" "rm $remote_tarball" "cd $dir")
fi
steps+=(
    "{ command -v $python >/dev/null 2>&1 || { $apt_get update -qq && $apt_get install -y -qq $python $python-venv; }; }"
    "{ test -x .venv/bin/python || $python -m venv .venv; }"
    ".venv/bin/python -m pip install --progress-bar off --upgrade pip"
    ".venv/bin/python -m pip install --progress-bar off -r requirements.txt \"jax[tpu]==$jax_version\" -f $libtpu_index"
    ".venv/bin/python -c \"import jax; jax.print_environment_info()\""
)
remote="${steps[0]}"
for step in "${steps[@]:1}"; do
    remote+=" && $step"
done
run gcloud compute tpus tpu-vm ssh "$tpu_name" "${TPU_FLAGS[@]}" --worker=all --command "$remote"
if [[ -z $git_url ]]; then
    run rm -f "$tarball"
fi
next_step="$(quote_command launch/tpu/train.sh --name "$tpu_name" "${TPU_FLAGS[@]}")"
note "Next: $next_step --workdir gs://BUCKET/workdirs/RUN"
