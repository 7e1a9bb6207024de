"""main.py's command line: a user's mistake gives one line naming it and the fix, before JAX loads."""

import os
import re
import subprocess
import sys

import pytest
from absl import flags
from ml_collections import config_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_main(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "main.py", *arguments], cwd=REPO, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--workdir", "w"], r"--config is required, e.g. --config configs/synthetic.py .*configs/movi_c.py"),
        (["--config", "configs/synthetic.py"], "--workdir is required"),
        (["--config", "configs/nope.py", "--workdir", "w"], "configs/nope.py: no such file; the configs are .*synthetic"),
        (["--config=configs/synthetic.py", "--workdir=w", "--config.foo=1"], "--config.foo: .* has no field 'foo'"),
        (
            ["--config=configs/synthetic.py", "--workdir=w", "--config.seed=1", "--config.model.num_slotz=7"],
            "--config.model.num_slotz: .* no field 'num_slotz' in config.model. Did you mean \"num_slots\"",
        ),
        (["--config=configs/synthetic.py:bogus", "--workdir=w"], "Unknown config variant 'bogus'; use 'ssync'"),
        (["--config=configs/synthetic.py", "--workdir=w", "--config.model.decoder.kernel=3"], "no field 'kernel' in config.model.decoder. Did you mean \"kernel_size\""),
        (["--config=configs/synthetic.py", "--workdir=w", "--config.model.num_slots=many"], "num_slots=many"),
    ],
)
def test_command_line_mistakes_give_one_line_naming_them(arguments, message):
    result = run_main(*arguments)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in result.stderr


def test_known_overrides_and_variants_reach_the_config():
    argv = ["main.py", "--config=configs/synthetic.py:base", "--config.model.num_slots=7"]
    flag_values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", flag_values=flag_values, sys_argv=argv)
    flag_values(argv)
    assert flag_values.config.model.num_slots == 7
    assert sorted(flag_values.config.losses) == ["reconstruction", "slot_contrast"]  # SSync off.


def assert_one_error_line(result: subprocess.CompletedProcess, message: str) -> None:
    """Exit status 1, no traceback, and exactly one `Error:` line matching `message` (progress lines may precede it)."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and re.search(message, errors[0]), result.stderr[-3000:]
    for chatter in ("oneDNN", "absl::InitializeLog", "Unable to initialize backend", "checkpoint_manager"):
        assert chatter not in result.stderr, chatter  # The libraries' start-up lines stay out.


def test_a_missing_dataset_is_one_line_naming_it_and_both_ways_out(tmp_path):
    result = run_main(
        "--config=configs/synthetic.py", f"--workdir={tmp_path / 'w'}",
        "--config.data.name=movi_c/128x128:1.0.0", f"--config.data.data_dir={tmp_path / 'nodata'}",
    )  # fmt: skip
    assert_one_error_line(result, r"MOVi-C \(movi_c/128x128:1.0.0\) not found under .*nodata.*movi_convert.*synthetic_movi")
    assert not (tmp_path / "w").exists()  # Checked before anything is written.


def test_missing_backbone_weights_are_one_line_naming_the_flag(tmp_path):
    # The tiny training data with the paper's model at a 28x28 input (2x2 ViT patches): the weights are
    # read when the state is created, before any step.
    from tests import tiny_train_config

    result = run_main(
        "--config=configs/movi_c.py", f"--workdir={tmp_path / 'w'}", f"--config.data.name={tiny_train_config.DATASET}",
        "--config.data.image_size=(28,28)", "--config.data.global_batch_size=2", "--config.loss_group_size=2",
        "--config.model.encoder.weights=/no/such/dinov2",
    )  # fmt: skip
    assert_one_error_line(result, r"No DINOv2 weights at /no/such/dinov2: --config.model.encoder.weights takes")
    assert not (tmp_path / "w").exists()


def test_a_tilde_after_the_equals_sign_is_the_home_directory(tmp_path, monkeypatch):
    # The shell leaves `--flag=~/x` alone; main.py expands it in --workdir and the config's paths.
    monkeypatch.setenv("HOME", str(tmp_path))
    result = run_main(
        "--config=configs/synthetic.py", "--workdir=~/w", "--config.data.name=movi_c/128x128:1.0.0",
        "--config.data.data_dir=~/nodata",
    )  # fmt: skip
    assert_one_error_line(result, f"not found under {tmp_path / 'nodata'}")


def test_ctrl_c_in_any_command_line_is_one_line_and_exit_status_130():
    # Every entry point runs through cli.run: a tool or an evaluation interrupted by Ctrl-C.
    code = (
        "import sys; sys.argv = ['tool']\n"
        "from ssync_jax import cli\n"
        "def main(argv): raise KeyboardInterrupt\n"
        "cli.run(main)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 130 and result.stderr == "Interrupted (Ctrl-C).\n", result.stderr
