"""Issue 30's accelerator run, on the CPU at tiny shapes, as a bare GPU host would run it.

A GPU host has JAX, flax, optax, orbax-checkpoint, torch, timm and einops but not TensorFlow,
TFDS, grain or clu. Each run here is a subprocess whose Python (and every Python it starts) finds
none of those, as if they were not installed (a sitecustomize.py first on PYTHONPATH hides them from
every import finder), so an import that would fail there fails here:

- benchmarks/accelerator.sh (benchmarks.train_speed) prints its figures;
- benchmarks/gpu_run.sh --smoke writes its JSON with every part run, the authors' side reported as
  skipped with the reason (no bundle, and torch blocked too, as in CI);
- with AUTHORS_PYTHON set (a Python with torch and the authors' packages, e.g. their virtualenv)
  and a bundle (benchmarks/gpu_bundle.sh; GPU_BUNDLE, default gpu_bundle/), the same run times
  their step too, end to end (skipped otherwise).
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
ABSENT_ON_GPU_HOSTS = ("tensorflow", "tensorflow_datasets", "grain", "clu")
BLOCKER = """
import os, sys

BLOCKED = {blocked!r}


class _Hiding:
    # One of sys.meta_path's finders, blind to BLOCKED: with all of them so, those modules are absent
    # (import raises ModuleNotFoundError, importlib.util.find_spec returns None), as on the host.
    def __init__(self, finder):
        self._finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            return None
        return self._finder.find_spec(name, path, target)

    def __getattr__(self, attribute):
        return getattr(self._finder, attribute)


sys.meta_path[:] = [_Hiding(finder) for finder in sys.meta_path]
open(os.path.join({marker_dir!r}, f"blocker-ran-{{os.getpid()}}"), "w").close()
"""


def _environment(tmp_path: pathlib.Path, blocked: tuple[str, ...], **extra: str) -> dict[str, str]:
    """os.environ for a subprocess in which importing `blocked` raises (in every Python it starts)."""
    site = tmp_path / "blocker"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=blocked, marker_dir=str(tmp_path)))
    environment = {key: value for key, value in os.environ.items() if key not in ("AUTHORS_PYTHON", "PYTHONPATH")}
    return dict(environment, PYTHONPATH=str(site), JAX_PLATFORMS="cpu", PYTHON=sys.executable, **extra)


def _blocker_ran(tmp_path: pathlib.Path) -> bool:
    return any(tmp_path.glob("blocker-ran-*"))


@pytest.mark.slow  # Moved out of the quick suite (>20 s on 2 cores); CI runs it in the slow command.
def test_step_benchmark_runs_without_tensorflow_tfds_grain_or_clu(tmp_path):
    command = [
        "benchmarks/accelerator.sh", "--per_device_batch=2", "--steps=1", "--dtypes=float32",
        "--config.data.image_size=(28,28)", "--config.data.chunk_length=2",
        "--config.model.decoder.hidden_sizes=(32,32,32)",
    ]  # fmt: skip
    environment = _environment(tmp_path, ABSENT_ON_GPU_HOSTS + ("torch",))
    result = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _blocker_ran(tmp_path)
    assert any(line.strip().startswith("float32") and "s/step" in line for line in result.stdout.splitlines())


def _gpu_run_smoke(tmp_path: pathlib.Path, environment: dict[str, str]) -> dict:
    out = tmp_path / "gpu_run.json"
    command = ["benchmarks/gpu_run.sh", "--smoke", "--out", str(out)]
    result = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-5000:])
    assert _blocker_ran(tmp_path)
    return json.loads(out.read_text(), parse_constant=_not_json)  # Strict JSON: no NaN or Infinity.


def _not_json(constant: str):
    raise ValueError(f"the JSON holds {constant}")


def _assert_ours(report: dict) -> None:
    assert report["smoke"] is True
    assert report["host"]["ours"]["versions"]["jax"]
    benchmark = report["step_benchmark"]
    assert "error" not in benchmark, benchmark
    assert set(benchmark["dtypes"]) == {"bfloat16", "float32"}
    for figures in benchmark["dtypes"].values():
        assert figures["seconds_per_step"] > 0 and figures["trainable_tflops_per_step"] > 0
        assert figures["mfu"] is None  # A CPU has no entry in PEAK_TFLOPS.
    comparison = report["vs_authors"]
    assert "error" not in comparison, comparison
    assert comparison["rounds"] == 1 and comparison["batch"] == 2
    for dtype in ("bfloat16", "float32"):
        side = comparison["sides"][f"ours/{dtype}"]
        assert side["seconds_per_step"] > 0 and side["clips_per_second"] > 0 and side["flops_per_step"] > 0
    assert comparison["ours_float32_matmul_relative_error"] < 1e-5  # XLA:CPU multiplies float32 in float32.


@pytest.mark.slow  # The whole one-command run at tiny shapes: several compilations, minutes on 2 cores.
def test_gpu_run_smoke_reports_the_authors_side_skipped_without_bundle_or_torch(tmp_path):
    environment = _environment(tmp_path, ABSENT_ON_GPU_HOSTS + ("torch",), GPU_BUNDLE=str(tmp_path / "no_bundle"))
    report = _gpu_run_smoke(tmp_path, environment)
    _assert_ours(report)
    comparison = report["vs_authors"]
    assert comparison["authors"]["status"] == "skipped"
    assert comparison["authors"]["reason"].startswith("no bundle")
    assert set(comparison["sides"]) == {"ours/bfloat16", "ours/float32"} and comparison["speedup"] == {}
    assert comparison["weights"] == "our random init"


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("AUTHORS_PYTHON"), reason="AUTHORS_PYTHON (a Python with torch) is not set")
def test_gpu_run_smoke_times_the_authors_step_too(tmp_path):
    bundle = pathlib.Path(os.environ.get("GPU_BUNDLE", REPO / "gpu_bundle"))
    if not (bundle / "SSync" / "SSync" / "models.py").is_file():
        pytest.skip(f"no bundle at {bundle} (benchmarks/gpu_bundle.sh makes it)")
    environment = _environment(
        tmp_path, ABSENT_ON_GPU_HOSTS, GPU_BUNDLE=str(bundle), GPU_SITE=str(tmp_path / "site"),
        AUTHORS_PYTHON=os.environ["AUTHORS_PYTHON"],
    )  # fmt: skip
    report = _gpu_run_smoke(tmp_path, environment)
    _assert_ours(report)
    assert (tmp_path / "site" / "pytorch_lightning").is_dir()  # The bundle's wheels, installed offline.
    assert report["host"]["authors_commit"] == (bundle / "PIN").read_text().split()[0]
    assert report["host"]["theirs"]["versions"]["pytorch-lightning"] == "1.9.5"
    comparison = report["vs_authors"]
    assert comparison["authors"]["status"] == "ran", comparison["authors"]
    assert comparison["authors"]["torch_flop_counter_flops_per_step"] > 0
    assert set(comparison["sides"]) == {"theirs/16-mixed", "theirs/float32", "ours/bfloat16", "ours/float32"}
    for name, side in comparison["sides"].items():
        assert side["seconds_per_step"] > 0, name
    assert comparison["sides"]["theirs/16-mixed"]["flops_per_step"] == comparison["sides"]["ours/bfloat16"]["flops_per_step"]
    assert len(comparison["speedup"]) == 4 and all(value > 0 for value in comparison["speedup"].values())
