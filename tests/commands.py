"""Running the project's command lines from tests: `python -m module args...` in the repository root."""

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_module(module: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m module args...` from the repository root; fails the test on a non-zero exit if `check`."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert not check or result.returncode == 0, result.stderr[-3000:]
    return result
