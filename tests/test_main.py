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
            "--config.model.num_slotz: .* no field 'num_slotz'. Did you mean \"num_slots\"",
        ),
        (["--config=configs/synthetic.py:bogus", "--workdir=w"], "Unknown config variant 'bogus'; use 'ssync'"),
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
