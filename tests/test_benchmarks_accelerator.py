"""benchmarks/accelerator.sh on the CPU at a tiny size: every figure printed, no MFU without a known peak."""

import pytest
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow  # Moved out of the quick suite (>20 s on 2 cores); CI runs it in the slow command.
def test_accelerator_benchmark_prints_every_figure_for_each_dtype():
    command = [
        "benchmarks/accelerator.sh", "--per_device_batch=2", "--steps=1", "--dtypes=float32",
        "--config.data.image_size=(28,28)", "--config.data.chunk_length=2",
        "--config.model.decoder.hidden_sizes=(32,32,32)",
    ]  # fmt: skip
    env = dict(os.environ, PYTHON=sys.executable, JAX_PLATFORMS="cpu")
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.strip().startswith("float32"))
    figures = {unit: float(value) for value, unit in re.findall(r"([\d.e+-]+) (s/step|clips/s|TFLOP/step|TFLOP/s)", line)}
    assert set(figures) == {"s/step", "clips/s", "TFLOP/step", "TFLOP/s"}
    assert all(value > 0 for value in figures.values()), line
    assert "MFU   nan %" in line  # A CPU has no peak in PEAK_TFLOPS.


def test_accelerator_script_has_help():
    result = subprocess.run(["benchmarks/accelerator.sh", "--help"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0 and "accelerators" in result.stdout
