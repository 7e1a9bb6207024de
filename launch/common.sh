# shellcheck shell=bash
# Helpers shared by the launch scripts; sourced, never run. Kept to bash 3.2 (macOS's /bin/bash),
# since the Cloud TPU scripts run on researchers' laptops.
#
# Each script sets SCRIPT_NAME before calling these, and DRY_RUN=1 for --dry-run.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY_RUN=0

usage_error() {  # MESSAGE: reject the command line the way CLIs do (exit status 2).
    printf '%s: error: %s\nRun %s --help for the options.\n' "$SCRIPT_NAME" "$1" "$SCRIPT_NAME" >&2
    exit 2
}

fail() {  # MESSAGE: a failure that is not about the command line.
    printf '%s: error: %s\n' "$SCRIPT_NAME" "$1" >&2
    exit 1
}

note() {  # MESSAGE: progress and next steps go to stderr, so a dry run's stdout is only commands.
    printf '%s\n' "$1" >&2
}

need_value() {  # OPTION [VALUE...]: the argument list at an option that takes a value.
    if [[ $# -lt 2 || -z $2 || $2 == --* ]]; then
        usage_error "$1 needs a value"
    fi
}

require() {  # OPTION VALUE [ENV_VAR]: a usage error naming OPTION (and its env var) when VALUE is empty.
    if [[ -z $2 ]]; then
        usage_error "missing $1${3:+ (or set $3)}"
    fi
}

shell_quote() {  # WORD: WORD as the shell would need it typed: bare when safe, else single-quoted.
    local safe='^[A-Za-z0-9_@%+=:,./-]+$'
    local escaped_quote="'\\''"
    if [[ $1 =~ $safe ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/$escaped_quote}"
    fi
}

quote_command() {  # WORD...: the words as one pasteable command line (no trailing newline).
    local separator=""
    local word
    for word in "$@"; do
        printf '%s' "$separator"
        shell_quote "$word"
        separator=" "
    done
}

run() {  # COMMAND...: under --dry-run print it on one line; otherwise echo it to stderr and run it.
    if [[ $DRY_RUN == 1 ]]; then
        quote_command "$@"
        printf '\n'
    else
        printf '+ %s\n' "$(quote_command "$@")" >&2
        "$@"
    fi
}

require_tool() {  # TOOL HINT: fail unless TOOL is on PATH (dry runs need no tools).
    if [[ $DRY_RUN != 1 ]] && ! command -v "$1" >/dev/null 2>&1; then
        fail "$1 not found on PATH; $2"
    fi
}

check_tpu_name() {  # NAME: Cloud TPU's naming rule, checked here so the error comes before any cloud call.
    local pattern='^[a-z]([-a-z0-9]*[a-z0-9])?$'
    if [[ ! $1 =~ $pattern ]]; then
        usage_error "--name '$1' is not a valid TPU name: lowercase letters, digits and hyphens, starting with a letter"
    fi
}

check_zone() {  # ZONE: catches swapped or misspelled arguments (a zone looks like us-central2-b).
    local pattern='^[a-z]+-[a-z]+[0-9]+-[a-z]$'
    if [[ ! $1 =~ $pattern ]]; then
        usage_error "--zone '$1' does not look like a zone (e.g. us-central2-b, europe-west4-a)"
    fi
}

check_port() {  # PORT
    local pattern='^[0-9]+$'
    if [[ ! $1 =~ $pattern ]] || ((10#$1 < 1 || 10#$1 > 65535)); then
        usage_error "--port '$1' is not a port number (1-65535)"
    fi
}

pinned_jax_version() {  # The jax version requirements.txt pins (accelerator builds must match it).
    local version
    version="$(sed -n 's/^jax==\([0-9][0-9.]*\)[[:space:]]*$/\1/p' "$REPO_ROOT/requirements.txt")"
    if [[ -z $version ]]; then
        fail "no 'jax==VERSION' line in $REPO_ROOT/requirements.txt"
    fi
    printf '%s' "$version"
}

check_tpu_target() {  # NAME ZONE: the TPU every tpu/ script addresses, given and well-formed.
    require --name "$1" TPU_NAME
    require --zone "$2" ZONE
    check_tpu_name "$1"
    check_zone "$2"
}

tpu_flags() {  # ZONE PROJECT: sets TPU_FLAGS, the location flags every gcloud TPU command takes.
    TPU_FLAGS=("--zone=$1")
    if [[ -n $2 ]]; then
        TPU_FLAGS+=("--project=$2")
    fi
}
