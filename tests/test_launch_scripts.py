"""The launch scripts (launch/): help, dry runs, input checks, and what a real run executes.

Nothing here needs a cloud or a cluster: dry runs must not call gcloud, and real runs call stubs of
gcloud and srun (first on PATH) that record their arguments. The stub gcloud can also run an ssh
`--command` in a fake home directory, standing in for one TPU worker.
"""

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TPU_SCRIPTS = [f"launch/tpu/{name}.sh" for name in ("create", "setup", "train", "tensorboard", "delete")]
OPTION_SCRIPTS = [*TPU_SCRIPTS, "launch/gpu/train.sh"]
SBATCH = "launch/slurm/train.sbatch"
ALL_SCRIPTS = [*OPTION_SCRIPTS, SBATCH, "launch/common.sh"]
ZONE = "us-central2-b"
LOCATION = ["--name", "t1", "--zone", ZONE]
SSH = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "t1", f"--zone={ZONE}"]
STUB_SEPARATOR = "\x1f"
BASH = shutil.which("bash")
# Records its arguments (one call per line) and copies an scp's file into $HOME; with
# STUB_EXECUTE_SSH=1 runs an ssh --command in $HOME, as one TPU worker would.
STUB_GCLOUD = r"""#!/usr/bin/env bash
{ printf '%s\x1f' "$@"; printf '\n'; } >> "$STUB_LOG"
if [[ ${STUB_EXECUTE_SSH:-0} == 1 ]]; then
    while [[ $# -gt 0 ]]; do
        if [[ $1 == --command ]]; then cd "$HOME" && exec bash -c "$2"; fi
        shift
    done
fi
if [[ $4 == scp ]]; then cp "$5" "$HOME/${6#*:}"; fi
"""
STUB_SRUN = """#!/usr/bin/env bash
{ printf '%s\\x1f' srun "$@"; printf '\\n'; } >> "$STUB_LOG"
"""
# Stands in for a virtualenv's python: records argv, cwd and visible GPUs; with FAKE_TRAIN_FOREVER=1
# it then "trains" until SIGTERM.
FAKE_PYTHON = """#!/usr/bin/env bash
printf '%s\\n' "$PWD" "${CUDA_VISIBLE_DEVICES-unset}" > "$ARGV_FILE.context"
printf '%s\\n' "$@" > "$ARGV_FILE.partial" && mv "$ARGV_FILE.partial" "$ARGV_FILE"
echo "step 1"
if [[ ${FAKE_TRAIN_FOREVER:-0} == 1 ]]; then
    trap 'echo "SIGTERM received"; exit 0' TERM
    while true; do sleep 0.1; done
fi
"""


@dataclasses.dataclass
class Sandbox:
    """A PATH with stubs first, a fake home, and where the stubs write."""

    root: Path
    home: Path
    log: Path
    argv_file: Path
    env: dict[str, str]

    def calls(self) -> list[list[str]]:
        """Every recorded stub call, as its argument list."""
        if not self.log.exists():
            return []
        return [line.split(STUB_SEPARATOR)[:-1] for line in self.log.read_text().splitlines()]

    def fake_python(self, path: Path) -> Path:
        """Writes the fake interpreter at `path` (e.g. VENV/bin/python)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(FAKE_PYTHON)
        path.chmod(0o755)
        return path

    def recorded_argv(self, timeout_s: float = 10.0) -> list[str]:
        """The fake python's argv, waiting for a background start."""
        deadline = time.monotonic() + timeout_s
        while not self.argv_file.exists():
            assert time.monotonic() < deadline, "the fake python never started"
            time.sleep(0.05)
        return self.argv_file.read_text().splitlines()


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("gcloud", STUB_GCLOUD), ("srun", STUB_SRUN)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    log, argv_file = tmp_path / "calls.log", tmp_path / "argv.txt"
    # A clean environment: the user's TPU_NAME, ZONE, WORKDIR... must not leak into the tests.
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "TMPDIR": str(tmp_path),
        "STUB_LOG": str(log),
        "ARGV_FILE": str(argv_file),
    }
    return Sandbox(tmp_path, home, log, argv_file, env)


def run(
    sandbox: Sandbox, script: str, *args: str, env: dict[str, str] | None = None, stdin: str = "", cwd: Path = REPO
) -> subprocess.CompletedProcess:
    """`bash SCRIPT ARGS...` in the sandbox's environment (plus `env`)."""
    return subprocess.run(
        [BASH, str(REPO / script), *args],
        cwd=cwd,
        env={**sandbox.env, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def dry_run(sandbox: Sandbox, script: str, *args: str, env: dict[str, str] | None = None) -> list[list[str]]:
    """The commands a dry run prints, one argument list per line; checks that it ran nothing."""
    result = run(sandbox, script, "--dry-run", *args, env=env)  # before any `--`, after which all passes through
    assert result.returncode == 0, result.stderr
    assert sandbox.calls() == [], "a dry run called gcloud/srun"
    return [shlex.split(line) for line in result.stdout.splitlines()]


def remote_command(argv: list[str]) -> str:
    """The shell code an ssh command line runs on the workers."""
    return argv[argv.index("--command") + 1]


def shell_words(code: str) -> list[str]:
    """Shell code as words and operators (`;`, `&&`, `>>`, ... come out as their own tokens)."""
    lexer = shlex.shlex(code, posix=True, punctuation_chars=True)
    lexer.wordchars += ":,@%+[]$"
    return list(lexer)


def simple_commands(code: str) -> list[list[str]]:
    """Shell code cut at `&&`, `||`, `;` and braces into its simple commands' words."""
    commands, current = [], []
    for word in shell_words(code) + [";"]:
        if word in ("&&", "||", ";", "{", "}"):
            if current:
                commands.append(current)
            current = []
        else:
            current.append(word)
    return commands


def pinned_jax() -> str:
    """The jax version requirements.txt pins."""
    (version,) = re.findall(r"^jax==(\S+)$", (REPO / "requirements.txt").read_text(), re.MULTILINE)
    return version


def hostname() -> str:
    """What `$(hostname)` gives on this machine (the worker the stub gcloud stands for)."""
    return subprocess.run(["hostname"], capture_output=True, text=True, check=True).stdout.strip()


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Polls `condition` (for effects of background processes), failing after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# ----------------------------------------------------------------------------------------------
# Every script.


@pytest.mark.parametrize("script", ALL_SCRIPTS)
def test_every_script_passes_the_bash_syntax_check(script: str) -> None:
    result = subprocess.run(["bash", "-n", str(REPO / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_finds_nothing() -> None:
    result = subprocess.run(["shellcheck", "-x", *ALL_SCRIPTS], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("script", OPTION_SCRIPTS)
def test_help_shows_usage_an_example_and_every_option_the_parser_accepts(sandbox: Sandbox, script: str) -> None:
    parsed = re.findall(r"^\s+(?:-h \| )?(--[a-z][a-z-]*)\)", (REPO / script).read_text(), re.MULTILINE)
    assert len(parsed) >= 4
    result = run(sandbox, script, "--help")
    assert result.returncode == 0
    assert "Usage:" in result.stdout and "Example:" in result.stdout
    undocumented = [option for option in parsed if not re.search(rf"{option}\b", result.stdout)]
    assert undocumented == []


def test_sbatch_help_documents_every_setting_it_reads(sandbox: Sandbox) -> None:
    read = set(re.findall(r"\$\{([A-Z_]+):-", (REPO / SBATCH).read_text())) - {"SLURM_SUBMIT_DIR"}
    read = {name for name in read if not name.startswith("SLURM_")}
    assert {"WORKDIR", "CONFIG", "VENV", "EXTRA_ARGS", "DRY_RUN"} <= read
    result = run(sandbox, SBATCH, "--help")
    assert result.returncode == 0
    assert [name for name in sorted(read) if name not in result.stdout] == []
    assert "sbatch --export=ALL,WORKDIR=" in result.stdout


def test_printed_commands_paste_back_to_the_same_words() -> None:
    words = ["plain", "two words", "it's", "", "$(rm -rf x)", "*.py", "~", "--config.a='q'", 'say "hi"\\']
    quoted = subprocess.run(
        ["bash", "-c", 'source launch/common.sh && quote_command "$@"', "_", *words],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    evaluated = subprocess.run(["bash", "-c", f"printf '%s\\n' {quoted}"], capture_output=True, text=True, check=True)
    assert evaluated.stdout.split("\n")[:-1] == words
    assert shlex.split(quoted) == words


MISSING_OPTIONS = [
    ("launch/tpu/create.sh", ["--zone", ZONE, "--accelerator-type", "v4-8"], "--name"),
    ("launch/tpu/create.sh", ["--name", "t1", "--accelerator-type", "v4-8"], "--zone"),
    ("launch/tpu/create.sh", LOCATION, "--accelerator-type"),
    ("launch/tpu/setup.sh", ["--zone", ZONE], "--name"),
    ("launch/tpu/train.sh", LOCATION, "--workdir"),
    ("launch/tpu/train.sh", ["--zone", ZONE, "--workdir", "gs://b/w"], "--name"),
    ("launch/tpu/tensorboard.sh", LOCATION, "--logdir"),
    ("launch/tpu/delete.sh", ["--name", "t1"], "--zone"),
    ("launch/gpu/train.sh", ["--gpus", "0"], "--workdir"),
    ("launch/tpu/create.sh", [*LOCATION, "--accelerator-type"], "--accelerator-type needs a value"),
]


@pytest.mark.parametrize(("script", "args", "missing"), MISSING_OPTIONS)
def test_missing_options_fail_with_status_2_naming_the_option(
    sandbox: Sandbox, script: str, args: list[str], missing: str
) -> None:
    result = run(sandbox, script, *args)
    assert result.returncode == 2
    assert missing in result.stderr
    assert sandbox.calls() == []


@pytest.mark.parametrize(
    ("option", "value"), [("--name", "Bad_Name"), ("--zone", "v4-8"), ("--project", "")]
)
def test_malformed_values_fail_with_status_2(sandbox: Sandbox, option: str, value: str) -> None:
    args = {"--name": "t1", "--zone": ZONE, "--accelerator-type": "v4-8", option: value}
    result = run(sandbox, "launch/tpu/create.sh", *[word for pair in args.items() for word in pair])
    assert result.returncode == 2
    assert option in result.stderr


@pytest.mark.parametrize("script", OPTION_SCRIPTS)
def test_unknown_arguments_fail_with_status_2(sandbox: Sandbox, script: str) -> None:
    result = run(sandbox, script, "--no-such-option")
    assert result.returncode == 2
    assert "--no-such-option" in result.stderr


# ----------------------------------------------------------------------------------------------
# create.sh


def test_create_dry_run_prints_the_tpu_vm_create_command(sandbox: Sandbox) -> None:
    commands = dry_run(
        sandbox, "launch/tpu/create.sh", "--name=t1", "--zone", ZONE, "--accelerator-type", "v4-8", "--spot",
        "--project", "my-project",
    )  # fmt: skip
    assert commands == [
        [
            "gcloud", "compute", "tpus", "tpu-vm", "create", "t1", f"--zone={ZONE}", "--project=my-project",
            "--accelerator-type=v4-8", "--version=tpu-ubuntu2204-base", "--spot",
        ]
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("accelerator_type", "runtime"),
    [
        ("v4-8", "tpu-ubuntu2204-base"),
        ("v4-32", "tpu-ubuntu2204-base"),
        ("v5litepod-8", "v2-alpha-tpuv5-lite"),
        ("v5p-16", "v2-alpha-tpuv5"),
        ("v6e-8", "v2-alpha-tpuv6e"),
    ],
)
def test_create_picks_the_runtime_of_the_tpu_generation(sandbox: Sandbox, accelerator_type: str, runtime: str) -> None:
    (command,) = dry_run(sandbox, "launch/tpu/create.sh", *LOCATION, "--accelerator-type", accelerator_type)
    assert f"--accelerator-type={accelerator_type}" in command
    assert f"--version={runtime}" in command


def test_create_passes_flags_after_a_double_dash_to_gcloud_unchanged(sandbox: Sandbox) -> None:
    extra = ["--service-account=sa@p.iam.gserviceaccount.com", "--labels=team=vision", "--description", "a b"]
    (command,) = dry_run(sandbox, "launch/tpu/create.sh", *LOCATION, "--accelerator-type", "v4-8", "--", *extra)
    assert command[-4:] == extra


def test_create_version_option_overrides_the_default_runtime(sandbox: Sandbox) -> None:
    (command,) = dry_run(sandbox, "launch/tpu/create.sh", *LOCATION, "--accelerator-type", "v4-8", "--version", "v2")
    assert [word for word in command if word.startswith("--version")] == ["--version=v2"]


@pytest.mark.parametrize("accelerator_type", ["v4", "v4-", "v4-0", "v3-8", "tpu-v4-8", "v4-8x", "V4-8", "v5e-8"])
def test_create_rejects_malformed_accelerator_types(sandbox: Sandbox, accelerator_type: str) -> None:
    result = run(sandbox, "launch/tpu/create.sh", *LOCATION, "--accelerator-type", accelerator_type, "--dry-run")
    assert result.returncode == 2
    assert f"--accelerator-type '{accelerator_type}'" in result.stderr
    assert result.stdout == ""


def test_create_queued_requests_a_queued_resource_named_like_its_node(sandbox: Sandbox) -> None:
    commands = dry_run(sandbox, "launch/tpu/create.sh", *LOCATION, "--accelerator-type", "v5p-8", "--queued", "--spot")
    assert commands == [
        [
            "gcloud", "compute", "tpus", "queued-resources", "create", "t1", f"--zone={ZONE}",
            "--accelerator-type=v5p-8", "--runtime-version=v2-alpha-tpuv5", "--node-id=t1", "--spot",
        ]
    ]  # fmt: skip


@pytest.mark.parametrize("conflict", [["--spot", "--preemptible"], ["--queued", "--preemptible"]])
def test_create_rejects_conflicting_capacity_options(sandbox: Sandbox, conflict: list[str]) -> None:
    result = run(sandbox, "launch/tpu/create.sh", *LOCATION, "--accelerator-type", "v4-8", *conflict)
    assert result.returncode == 2
    assert "--preemptible" in result.stderr


def test_environment_variables_fill_options_and_flags_win(sandbox: Sandbox) -> None:
    env = {"TPU_NAME": "from-env", "ZONE": ZONE, "ACCELERATOR_TYPE": "v4-8", "PROJECT": "env-project"}
    (command,) = dry_run(sandbox, "launch/tpu/create.sh", "--zone", "europe-west4-a", env=env)
    assert command[5:9] == ["from-env", "--zone=europe-west4-a", "--project=env-project", "--accelerator-type=v4-8"]


def test_create_runs_exactly_the_command_its_dry_run_prints(sandbox: Sandbox) -> None:
    args = [*LOCATION, "--accelerator-type", "v4-32", "--spot", "--project", "p"]
    (printed,) = dry_run(sandbox, "launch/tpu/create.sh", *args)
    result = run(sandbox, "launch/tpu/create.sh", *args)
    assert result.returncode == 0, result.stderr
    assert sandbox.calls() == [printed[1:]]
    assert "launch/tpu/setup.sh --name t1" in result.stderr


def test_real_runs_need_gcloud_but_dry_runs_do_not(sandbox: Sandbox) -> None:
    tools = sandbox.root / "tools"  # a PATH with only what create.sh needs besides gcloud
    tools.mkdir()
    (tools / "dirname").symlink_to(shutil.which("dirname"))
    args = [*LOCATION, "--accelerator-type", "v4-8"]
    assert run(sandbox, "launch/tpu/create.sh", *args, "--dry-run", env={"PATH": str(tools)}).returncode == 0
    result = run(sandbox, "launch/tpu/create.sh", *args, env={"PATH": str(tools)})
    assert result.returncode == 1
    assert "gcloud not found" in result.stderr


# ----------------------------------------------------------------------------------------------
# setup.sh


def test_setup_copies_head_to_every_worker_and_installs_the_pinned_jax_for_tpu(sandbox: Sandbox) -> None:
    tarball = f"{sandbox.root}/ssync-jax-t1.tar.gz"
    archive, copy, ssh, cleanup = dry_run(sandbox, "launch/tpu/setup.sh", *LOCATION)
    assert archive == ["git", "-C", str(REPO), "archive", "--format=tar.gz", f"--output={tarball}", "HEAD"]
    assert copy == [
        "gcloud", "compute", "tpus", "tpu-vm", "scp", tarball, "t1:ssync-jax-code.tar.gz", f"--zone={ZONE}",
        "--worker=all",
    ]  # fmt: skip
    assert ssh[: len(SSH) + 2] == [*SSH, "--worker=all", "--command"]
    steps = simple_commands(remote_command(ssh))
    assert steps[:4] == [
        ["mkdir", "-p", "ssync-jax"],
        ["tar", "-xzf", "ssync-jax-code.tar.gz", "-C", "ssync-jax"],
        ["rm", "ssync-jax-code.tar.gz"],
        ["cd", "ssync-jax"],
    ]
    assert ["python3.11", "-m", "venv", ".venv"] in steps
    assert [
        ".venv/bin/python", "-m", "pip", "install", "--progress-bar", "off", "-r", "requirements.txt",
        f"jax[tpu]=={pinned_jax()}", "-f", "https://storage.googleapis.com/jax-releases/libtpu_releases.html",
    ] in steps  # fmt: skip
    assert cleanup == ["rm", "-f", tarball]


@pytest.mark.parametrize("script_and_args", [
    ["launch/tpu/setup.sh", *LOCATION],
    ["launch/tpu/setup.sh", *LOCATION, "--git-url", "https://example.com/x.git"],
    ["launch/tpu/train.sh", *LOCATION, "--workdir", "gs://b/w", "--config.a='x y'"],
    ["launch/tpu/train.sh", *LOCATION, "--stop"],
    ["launch/tpu/train.sh", *LOCATION, "--logs"],
    ["launch/tpu/tensorboard.sh", *LOCATION, "--logdir", "gs://b/w"],
])  # fmt: skip
def test_worker_commands_parse_as_posix_shell(sandbox: Sandbox, script_and_args: list[str]) -> None:
    """The workers' login shell runs them; it need not be bash."""
    (ssh,) = [command for command in dry_run(sandbox, *script_and_args) if command[:5] == SSH[:5]]
    result = subprocess.run(["sh", "-n", "-c", remote_command(ssh)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_setup_with_git_url_fetches_the_ref_on_the_workers_instead_of_copying(sandbox: Sandbox) -> None:
    commands = dry_run(
        sandbox, "launch/tpu/setup.sh", *LOCATION, "--git-url", "https://example.com/x.git", "--git-ref", "v1",
        "--remote-dir", "my dir",
    )  # fmt: skip
    (ssh,) = commands
    words = shell_words(remote_command(ssh))
    assert words[:7] == ["mkdir", "-p", "my dir", "&&", "cd", "my dir", "&&"]
    fetch = words.index("fetch")
    assert words[fetch - 1 : fetch + 5] == ["git", "fetch", "-q", "--depth=1", "https://example.com/x.git", "v1"]
    assert "FETCH_HEAD" in words


def test_setup_sends_a_tarball_of_the_committed_code_and_removes_it_here(sandbox: Sandbox) -> None:
    result = run(sandbox, "launch/tpu/setup.sh", *LOCATION)
    assert result.returncode == 0, result.stderr
    copied = sandbox.home / "ssync-jax-code.tar.gz"
    listing = subprocess.run(["tar", "-tzf", str(copied)], capture_output=True, text=True, check=True).stdout
    assert {"main.py", "requirements.txt"} <= set(listing.split())
    assert not (sandbox.root / "ssync-jax-t1.tar.gz").exists()
    assert [call[3] for call in sandbox.calls()] == ["scp", "ssh"]


# ----------------------------------------------------------------------------------------------
# train.sh


def test_train_starts_main_py_in_the_background_on_all_workers_with_overrides(sandbox: Sandbox) -> None:
    (ssh,) = dry_run(
        sandbox, "launch/tpu/train.sh", *LOCATION, "--workdir", "gs://bucket/run", "--data-dir", "gs://bucket/tfds",
        "--config.num_train_steps=10", "--", "--config.model.encoder.weights=/dir with space",
    )  # fmt: skip
    assert ssh[: len(SSH) + 2] == [*SSH, "--worker=all", "--command"]
    words = shell_words(remote_command(ssh))
    start = words.index("nohup")
    assert words[start + 1 : words.index(">>")] == [
        ".venv/bin/python", "main.py", "--config", "configs/movi_c.py", "--workdir", "gs://bucket/run", "--distributed",
        "--config.data.data_dir=gs://bucket/tfds", "--config.num_train_steps=10",
        "--config.model.encoder.weights=/dir with space",
    ]  # fmt: skip
    assert words[words.index(">>") + 1] == "logs/train_$(hostname).log"


def test_train_rejects_a_workdir_outside_cloud_storage(sandbox: Sandbox) -> None:
    result = run(sandbox, "launch/tpu/train.sh", *LOCATION, "--workdir", "/home/me/run")
    assert result.returncode == 2
    assert "--workdir '/home/me/run' is not a gs:// path" in result.stderr


def test_train_explains_the_override_form_when_a_value_is_separated(sandbox: Sandbox) -> None:
    result = run(sandbox, "launch/tpu/train.sh", *LOCATION, "--workdir", "gs://b/w", "--config.seed", "3")
    assert result.returncode == 2
    assert "'3'" in result.stderr and "--config.KEY=VALUE" in result.stderr


def test_train_logs_and_stop_address_the_workers(sandbox: Sandbox) -> None:
    (logs,) = dry_run(sandbox, "launch/tpu/train.sh", *LOCATION, "--logs", "--worker", "2")
    assert "--worker=2" in logs
    assert shell_words(remote_command(logs))[-5:] == ["tail", "-n", "100", "-F", "logs/train_$(hostname).log"]
    (stop,) = dry_run(sandbox, "launch/tpu/train.sh", *LOCATION, "--stop")
    assert "--worker=all" in stop and "kill" in shell_words(remote_command(stop))
    assert run(sandbox, "launch/tpu/train.sh", *LOCATION, "--logs", "--worker", "last").returncode == 2
    assert run(sandbox, "launch/tpu/train.sh", *LOCATION, "--stop", "--worker", "1").returncode == 2


def test_train_on_a_worker_logs_per_host_refuses_a_second_start_and_stops_on_request(sandbox: Sandbox) -> None:
    remote_dir = sandbox.home / "ssync-jax"
    sandbox.fake_python(remote_dir / ".venv" / "bin" / "python")
    worker = {"STUB_EXECUTE_SSH": "1", "FAKE_TRAIN_FOREVER": "1"}
    args = [*LOCATION, "--workdir", "gs://b/run", "--config.seed=3"]
    pid_file = remote_dir / "logs" / "train.pid"
    try:
        started = run(sandbox, "launch/tpu/train.sh", *args, env=worker)
        assert started.returncode == 0, started.stderr
        assert sandbox.recorded_argv() == [
            "main.py", "--config", "configs/movi_c.py", "--workdir", "gs://b/run", "--distributed", "--config.seed=3",
        ]  # fmt: skip
        log = remote_dir / "logs" / f"train_{hostname()}.log"
        wait_until(lambda: "step 1" in log.read_text())

        again = run(sandbox, "launch/tpu/train.sh", *args, env=worker)
        assert again.returncode != 0
        assert "still running" in again.stderr

        stopped = run(sandbox, "launch/tpu/train.sh", *LOCATION, "--stop", env=worker)
        assert stopped.returncode == 0, stopped.stderr
        wait_until(lambda: "SIGTERM received" in log.read_text())
    finally:
        if pid_file.exists():
            subprocess.run(["kill", pid_file.read_text().strip()], capture_output=True)


def test_train_on_a_worker_without_setup_says_to_run_setup(sandbox: Sandbox) -> None:
    result = run(sandbox, "launch/tpu/train.sh", *LOCATION, "--workdir", "gs://b/w", env={"STUB_EXECUTE_SSH": "1"})
    assert result.returncode != 0
    assert "run launch/tpu/setup.sh first" in result.stderr


# ----------------------------------------------------------------------------------------------
# tensorboard.sh and delete.sh


def test_tensorboard_runs_on_worker_0_behind_a_port_forward(sandbox: Sandbox) -> None:
    (ssh,) = dry_run(sandbox, "launch/tpu/tensorboard.sh", *LOCATION, "--logdir", "gs://b/w", "--port", "6007")
    assert ssh[: len(SSH) + 1] == [*SSH, "--worker=0"]
    assert ssh[-3:] == ["--", "-L", "6007:localhost:6007"]
    words = shell_words(remote_command(ssh))
    assert words == ["cd", "ssync-jax", "&&", ".venv/bin/tensorboard", "--logdir", "gs://b/w", "--port", "6007"]


def test_tensorboard_local_needs_no_tpu(sandbox: Sandbox) -> None:
    commands = dry_run(sandbox, "launch/tpu/tensorboard.sh", "--local", "--logdir", "gs://b/w")
    assert commands == [["tensorboard", "--logdir", "gs://b/w", "--port", "6006"]]
    result = run(sandbox, "launch/tpu/tensorboard.sh", "--local", "--logdir", "gs://b/w", "--port", "70000")
    assert result.returncode == 2 and "--port" in result.stderr


@pytest.mark.parametrize("answer", ["n\n", "\n", ""])
def test_delete_deletes_nothing_unless_the_answer_is_yes(sandbox: Sandbox, answer: str) -> None:
    result = run(sandbox, "launch/tpu/delete.sh", *LOCATION, stdin=answer)
    assert result.returncode == 1
    assert sandbox.calls() == []


def test_delete_after_yes_deletes_without_gcloud_asking_again(sandbox: Sandbox) -> None:
    result = run(sandbox, "launch/tpu/delete.sh", *LOCATION, stdin="y\n")
    assert result.returncode == 0, result.stderr
    assert sandbox.calls() == [["compute", "tpus", "tpu-vm", "delete", "t1", f"--zone={ZONE}", "--quiet"]]


def test_delete_queued_removes_the_queued_resource_with_its_tpu(sandbox: Sandbox) -> None:
    result = run(sandbox, "launch/tpu/delete.sh", *LOCATION, "--queued", "--yes")
    assert result.returncode == 0, result.stderr
    assert sandbox.calls() == [
        ["compute", "tpus", "queued-resources", "delete", "t1", f"--zone={ZONE}", "--force", "--quiet"]
    ]


# ----------------------------------------------------------------------------------------------
# launch/gpu/train.sh


def test_gpu_install_makes_a_venv_with_the_pinned_jax_for_cuda_then_trains_on_the_chosen_gpus(
    sandbox: Sandbox,
) -> None:
    venv = sandbox.root / "venv"
    commands = dry_run(
        sandbox, "launch/gpu/train.sh", "--install", "--venv", str(venv), "--gpus", "0,1", "--workdir", "/runs/a",
        "--data-dir", "/data/tfds", "--config.seed=3",
    )  # fmt: skip
    assert commands == [
        ["cd", str(REPO)],
        ["python3.11", "-m", "venv", str(venv)],
        [f"{venv}/bin/python", "-m", "pip", "install", "-r", "requirements.txt", f"jax[cuda12]=={pinned_jax()}"],
        [
            "env", "CUDA_VISIBLE_DEVICES=0,1", f"{venv}/bin/python", "main.py", "--config", "configs/movi_c.py",
            "--workdir", "/runs/a", "--config.data.data_dir=/data/tfds", "--config.seed=3",
        ],
    ]  # fmt: skip


def test_gpu_runs_from_the_repository_with_paths_taken_from_the_callers_directory(sandbox: Sandbox) -> None:
    sandbox.fake_python(sandbox.root / "venv" / "bin" / "python")
    args = ["--venv", "venv", "--workdir", "runs/a", "--config", "configs/synthetic.py:base"]
    result = run(sandbox, "launch/gpu/train.sh", *args, cwd=sandbox.root)
    assert result.returncode == 0, result.stderr
    assert sandbox.recorded_argv() == [
        "main.py", "--config", "configs/synthetic.py:base", "--workdir", f"{sandbox.root}/runs/a",
    ]  # fmt: skip
    assert Path(str(sandbox.argv_file) + ".context").read_text().splitlines() == [str(REPO), "unset"]


def test_gpu_checks_the_gpu_list_and_the_virtualenv(sandbox: Sandbox) -> None:
    bad_gpus = run(sandbox, "launch/gpu/train.sh", "--workdir", "/w", "--gpus", "0;1")
    assert bad_gpus.returncode == 2 and "--gpus" in bad_gpus.stderr
    no_venv = run(sandbox, "launch/gpu/train.sh", "--workdir", "/w", "--venv", str(sandbox.root / "none"))
    assert no_venv.returncode == 2 and "--install" in no_venv.stderr


# ----------------------------------------------------------------------------------------------
# launch/slurm/train.sbatch


def slurm_settings(sandbox: Sandbox) -> dict[str, str]:
    return {
        "WORKDIR": "/shared/run",
        "CONFIG": "configs/movi_c.py:base",
        "DATA_DIR": "/shared/tfds",
        "EXTRA_ARGS": "--config.seed=3  --config.data.num_workers=4",
        "VENV": str(sandbox.root / "venv"),
        "SLURM_CPUS_PER_TASK": "8",
    }


def test_sbatch_dry_run_prints_one_srun_of_main_py_with_distributed(sandbox: Sandbox) -> None:
    result = run(sandbox, SBATCH, env={**slurm_settings(sandbox), "DRY_RUN": "1"})
    assert result.returncode == 0, result.stderr
    assert [shlex.split(line) for line in result.stdout.splitlines()] == [
        ["cd", str(REPO)],
        [
            "srun", "--kill-on-bad-exit=1", "--cpus-per-task=8", f"{sandbox.root}/venv/bin/python", "main.py",
            "--config", "configs/movi_c.py:base", "--workdir", "/shared/run", "--distributed",
            "--config.data.data_dir=/shared/tfds", "--config.seed=3", "--config.data.num_workers=4",
        ],
    ]  # fmt: skip
    assert sandbox.calls() == []


def test_sbatch_runs_srun_as_its_dry_run_prints(sandbox: Sandbox) -> None:
    sandbox.fake_python(sandbox.root / "venv" / "bin" / "python")
    settings = {**slurm_settings(sandbox), "SLURM_SUBMIT_DIR": str(REPO)}
    printed = run(sandbox, SBATCH, "--dry-run", env=settings).stdout.splitlines()
    result = run(sandbox, SBATCH, env=settings, cwd=sandbox.root)
    assert result.returncode == 0, result.stderr
    assert sandbox.calls() == [shlex.split(printed[-1])]


def test_sbatch_requires_workdir_and_one_task_per_gpu(sandbox: Sandbox) -> None:
    settings = slurm_settings(sandbox)
    no_workdir = run(sandbox, SBATCH, "--dry-run", env={**settings, "WORKDIR": ""})
    assert no_workdir.returncode == 2 and "WORKDIR" in no_workdir.stderr
    mismatch = {**settings, "SLURM_GPUS_PER_NODE": "a100:8", "SLURM_NTASKS_PER_NODE": "1"}
    result = run(sandbox, SBATCH, "--dry-run", env=mismatch)
    assert result.returncode == 2 and "--ntasks-per-node=1" in result.stderr


def test_sbatch_headers_ask_for_one_task_per_gpu_and_a_log_per_job() -> None:
    headers = dict(re.findall(r"^#SBATCH --([a-z-]+)=(\S+)$", (REPO / SBATCH).read_text(), re.MULTILINE))
    assert headers["ntasks-per-node"] == headers["gpus-per-node"]
    assert "%j" in headers["output"]
    assert {"nodes", "time", "cpus-per-task"} <= set(headers)
