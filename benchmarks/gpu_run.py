r"""The accelerator run of issue 30 in one process tree, one JSON: what benchmarks/gpu_run.sh runs.

    python -m benchmarks.gpu_run --out FILE [--smoke] [--authors_repo DIR] [--authors_python PY]

Two parts, each in its own subprocess so that each has the device to itself:

  step_benchmark  benchmarks.train_speed.measure (what benchmarks/accelerator.sh prints): configs/movi_c.py
                  at 64 clips per device (halved until it fits), bfloat16 then float32, `STEPS` timed
                  steps each after compilation and one warm-up step.
  vs_authors      benchmarks.gpu_vs_authors: our step against the authors' on the same device,
                  alternately, same weights and video (their side skipped, with the reason, where
                  torch or their repository is missing).

and a `host` part: device and driver (nvidia-smi), versions of both sides' packages, our commit and
theirs. `--smoke`: the same on whatever device JAX sees, at tiny shapes and one step or round. The
budget (`--budget_s`, default 450 s: within 8 minutes on one H100 with compilation, startup and the
bundle's install) bounds both: the comparison starts no new round once it is spent.

This module imports only the standard library itself: its parts import JAX (and the authors' side
torch) in their own processes.
"""

import argparse
import datetime
import gc
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 5  # Timed steps per dtype in the step benchmark (1 with --smoke).
ROUNDS = 5  # Alternating rounds of the comparison (1 with --smoke).
PER_DEVICE_BATCH = 64  # The authors' clips per GPU.
# gpu_vs_authors.SMOKE_CASE's sizes, so that its compilations come from the persistent cache too.
SMOKE_SIZES = {"image_size": (56, 56), "chunk_length": 2, "hidden_sizes": (32, 32, 32), "per_device_batch": 2}
OUR_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "ml-collections", "numpy", "absl-py")
THEIR_PACKAGES = (
    "torch", "torchvision", "timm", "einops", "pytorch-lightning", "torchmetrics", "lightning-utilities",
    "omegaconf", "webdataset", "scipy", "numpy",
)  # fmt: skip


def _versions(python: str, names: tuple[str, ...]) -> dict:
    """name -> version (None if absent) as `python` sees them, plugins named jax-cuda* included."""
    probe = (
        "import importlib.metadata as m, json, sys\n"
        "names = sys.argv[1:] + sorted({d.metadata['Name'] for d in m.distributions()\n"
        "    if (d.metadata['Name'] or '').lower().replace('_', '-').startswith(('jax-cuda', 'jax-rocm', 'libtpu'))})\n"
        "out = {}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))\n"
    )
    try:
        result = subprocess.run([python, "-c", probe, *names], capture_output=True, text=True, timeout=120)
        return json.loads(result.stdout) if result.returncode == 0 else {"error": result.stderr[-300:]}
    except (OSError, ValueError, subprocess.TimeoutExpired) as error:
        return {"error": str(error)}


def _nvidia_smi() -> dict | None:
    query = "name,driver_version,memory.total,power.limit,clocks.max.sm"
    try:
        result = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    rows = [[field.strip() for field in line.split(",")] for line in result.stdout.strip().splitlines()]
    return {"fields": query.split(","), "gpus": rows, "cuda_version": _smi_cuda_version()} if rows else None


def _smi_cuda_version() -> str | None:
    try:
        header = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    marker = "CUDA Version:"
    return header.split(marker, 1)[1].split()[0] if marker in header else None


def _git(*args: str, directory: str = REPO) -> str | None:
    try:
        result = subprocess.run(["git", "-C", directory, *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def host(authors_python: str, authors_repo: str) -> dict:
    """The machine, its driver, both sides' package versions, our commit and theirs."""
    pin_file = os.path.join(os.path.dirname(os.path.abspath(authors_repo)), "PIN")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "hostname": platform.node(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "nvidia_smi": _nvidia_smi(),
        "ours": {"python": sys.executable, "versions": _versions(sys.executable, OUR_PACKAGES)},
        "theirs": {"python": authors_python, "versions": _versions(authors_python, THEIR_PACKAGES)},
        "commit": _git("rev-parse", "HEAD"),
        "commit_dirty": bool(status) if status is not None else None,
        "authors_commit": open(pin_file).read().split()[0] if os.path.isfile(pin_file) else None,
        "environment": {
            name: os.environ.get(name)
            for name in ("XLA_FLAGS", "XLA_PYTHON_CLIENT_MEM_FRACTION", "CUDA_VISIBLE_DEVICES", "JAX_PLATFORMS")
        },
    }


def step_benchmark(smoke: bool) -> dict:
    """Child process: train_speed.measure on configs/movi_c.py, bfloat16 then float32, halving on OOM."""
    import jax

    from benchmarks import train_speed
    from configs import movi_c

    config = movi_c.get_config()
    batch = PER_DEVICE_BATCH
    if smoke:
        config.data.image_size = SMOKE_SIZES["image_size"]
        config.data.chunk_length = SMOKE_SIZES["chunk_length"]
        config.model.decoder.hidden_sizes = SMOKE_SIZES["hidden_sizes"]
        batch = SMOKE_SIZES["per_device_batch"]
    device = jax.devices()[0]
    out = {
        "config": "configs/movi_c.py" + (" at the smoke sizes" if smoke else ""),
        "image_size": list(config.data.image_size),
        "frames": config.data.chunk_length,
        "device": device.device_kind,
        "device_count": jax.device_count(),
        "platform_version": getattr(device.client, "platform_version", None),
        "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
        "steps": 1 if smoke else STEPS,
        "flops": "trainable_tflops_per_step: XLA cost analysis of the whole step minus the frozen backbone's forward",
        "tried_batches": [],
        "dtypes": {},
    }
    for dtype in ("bfloat16", "float32"):
        while True:
            gc.collect()  # What an attempt that ran out of memory left, now that its exception is gone.
            try:
                result = train_speed.measure(config, dtype, batch, out["steps"])
                break
            except Exception as error:
                if "RESOURCE_EXHAUSTED" not in str(error) and "out of memory" not in str(error).lower():
                    raise
                out["tried_batches"].append({"dtype": dtype, "per_device_batch": batch, "error": str(error)[:300]})
                jax.clear_caches()
                if batch == 1:
                    raise
                batch //= 2
        peak = train_speed.peak_flops(device.device_kind, dtype, None)
        out["dtypes"][dtype] = {"per_device_batch": batch, "peak_tflops": peak / 1e12 if peak else None, **result}
    return out


def _child(command: list[str], out: str, timeout: float) -> dict:
    """Runs a part, its output streamed to ours; its JSON, or why there is none."""
    started = time.monotonic()
    try:
        code = subprocess.run(command, cwd=REPO, timeout=max(timeout, 60)).returncode
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    seconds = time.monotonic() - started
    if code or not os.path.isfile(out):
        return {"error": f"exit status {code} (its output is above)", "wall_seconds": seconds}
    with open(out) as file:
        return {**json.load(file), "wall_seconds": seconds}


def finite(value):
    """`value` with every NaN or infinity replaced by None, so that the JSON is strict."""
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="the JSON to write")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, one step or round (e.g. on a CPU)")
    parser.add_argument("--authors_repo", default=os.path.join(REPO, "gpu_bundle", "SSync"))
    parser.add_argument("--authors_python", default=os.environ.get("AUTHORS_PYTHON") or sys.executable)
    parser.add_argument("--budget_s", type=float, default=450.0, help="seconds for both parts together")
    parser.add_argument("--child_step_benchmark", help=argparse.SUPPRESS)  # Internal: the first part's JSON.
    args = parser.parse_args()
    if args.child_step_benchmark:
        with open(args.child_step_benchmark, "w") as file:
            json.dump(finite(step_benchmark(args.smoke)), file, allow_nan=False)
        return 0

    started = time.monotonic()
    report = {
        "schema": "ssync-jax benchmarks/gpu_run 1",
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "host": host(args.authors_python, args.authors_repo),
    }
    smoke = ["--smoke"] if args.smoke else []
    with tempfile.TemporaryDirectory() as scratch:
        # Both parts compile the same MOVi-C program (train_speed's set-up): the second one reads it.
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(scratch, "jax_cache"))
        report["jax_compilation_cache_dir"] = os.environ["JAX_COMPILATION_CACHE_DIR"]
        part = os.path.join(scratch, "step_benchmark.json")
        print("== step benchmark (benchmarks.train_speed)", flush=True)
        report["step_benchmark"] = _child(
            [sys.executable, "-m", "benchmarks.gpu_run", "--out", "-", "--child_step_benchmark", part, *smoke],
            part,
            args.budget_s,
        )
        left = args.budget_s - (time.monotonic() - started)
        part = os.path.join(scratch, "vs_authors.json")
        print("== our step against the authors' (benchmarks.gpu_vs_authors)", flush=True)
        command = [
            sys.executable, "-m", "benchmarks.gpu_vs_authors", "--out", part, "--authors_repo", args.authors_repo,
            "--authors_python", args.authors_python, "--rounds", str(1 if args.smoke else ROUNDS),
            "--deadline_s", str(max(left - 60, 1)), *smoke,
        ]  # fmt: skip
        report["vs_authors"] = _child(command, part, max(left, 0) + 400)  # One round even past the budget.
    report["wall_seconds"] = time.monotonic() - started
    with open(args.out, "w") as file:
        json.dump(finite(report), file, indent=1, allow_nan=False)
    failed = [name for name in ("step_benchmark", "vs_authors") if "error" in report[name]]
    print(f"wrote {args.out}" + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
