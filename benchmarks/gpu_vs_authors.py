r"""Our MOVi-C training step against the authors' on one accelerator, alternately, as one JSON.

    python -m benchmarks.gpu_vs_authors --authors_repo DIR [--authors_python PY] --out FILE [--smoke]

The part of benchmarks/gpu_run.sh that times the authors' code: the accelerator sibling of
benchmarks/vs_authors.py (which times both sides on a CPU). Both sides build the MOVi-C model of
`ssync_jax.tools.authors_case` ("movi_c": ViT-S/14, 11 slots x 64, MLP decoder 3 x 1024, 4 frames
x 336², SSync active) with the same weights (their state dict drawn from the case's seed, converted
for ours) and the same video, at the authors' per-GPU batch, 64 clips, or the largest that fits:
64, halved for both sides whenever either runs out of memory. Their step runs in a subprocess,
benchmarks/authors_worker.py, in `--authors_python` (by default this Python: a GPU host has torch
beside jax); ours runs here. Each side may use `XLA_PYTHON_CLIENT_MEM_FRACTION` (default 0.45) of
the device's memory, since both stay resident while they take turns.

After compilation, one untimed step of each of ours and two of each of theirs (their first
allocates; GradScaler's scale settles), one round times, one after the other:

    theirs/16-mixed    Lightning's precision=16, their train.py's: float16 autocast + GradScaler
    theirs/float32     torch float32 (TF32 as torch leaves it: off for matmuls unless asked for)
    ours/bfloat16      model.dtype and model.encoder.backbone_dtype = bfloat16, params float32
    ours/float32       XLA's default matmul precision (on NVIDIA GPUs since Ampere: TF32)

and `--rounds` rounds give each one's median. Each also gets FLOPs per step (XLA's cost analysis of
our whole jitted step, the frozen backbone's forward included; theirs are credited with ours for
the same dtype, since both compute the same model, and torch's FlopCounterMode count of their
float32 step is recorded beside it), TFLOP/s, MFU against the device's dense peak
(`train_speed.PEAK_TFLOPS`: its bfloat16 entry for both 16-bit sides, its TF32 entry for both
float32 sides) and peak device memory (ours: JAX's high-water mark after its warm-up, in order
bfloat16 then float32; theirs: torch.cuda.max_memory_allocated over the step). Each side's float32
matmul precision is measured too: the relative error of a 256³ float32 matmul against float64
(~1e-7: float32; ~1e-4 to 1e-3: TF32 or bf16 passes).

Our side is set up as benchmarks.train_speed.measure sets up configs/movi_c.py (shardings, loss
groups), so that at 64 clips it compiles the program benchmarks/gpu_run.py's step benchmark
compiled just before, and can read it from JAX's persistent compilation cache.

Without a GPU (`--smoke`, the CPU, tiny shapes) the same code runs with torch on the CPU: their
16-mixed step is float16 autocast + GradScaler on the CPU. Where their side cannot run (no torch in
`--authors_python`, no repository at `--authors_repo`, torch without CUDA beside a GPU), it is
reported as skipped with the reason and ours runs alone, from our own random initialisation.
"""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # Before JAX starts: their side needs room.
os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.45")

import gc
import json
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags

from benchmarks import gpu_run, machine, train_speed
from configs import movi_c
from ssync_jax import costs, sharding, train_state
from ssync_jax.data import transforms
from ssync_jax.models import build_model
from ssync_jax.tools import authors_case
from ssync_jax.tools.import_torch_checkpoint import convert

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AUTHORS_BATCH = 64  # Their per-GPU batch (configs/SSync/movi_c.yaml on their GPUs).
OURS = ("bfloat16", "float32")
THEIRS = ("16-mixed", "float32")
PEAK_DTYPE = {"bfloat16": "bfloat16", "16-mixed": "bfloat16", "float32": "float32"}  # PEAK_TFLOPS entries.
SMOKE_CASE = dict(image_size=56, source_size=32, frames=2, decoder_hidden=(32, 32, 32))  # A 4x4 patch grid.
SMOKE_BATCH = 2
WARMUP_STEPS = 2  # Untimed steps of each of theirs before the rounds (ours: one, after compilation).
AUTHORS_MODULES = "torch, torchvision, timm, einops, pytorch_lightning, torchmetrics, omegaconf, webdataset, scipy"


class OutOfMemory(Exception):
    """A side ran out of device memory at this batch."""


def case_config(case: dict) -> ml_collections.ConfigDict:
    """configs/movi_c.py at the case's sizes and batch (`authors_case.case_config`), as train_speed.measure
    sets it up for a batch: its frames per clip, and the recipe's loss groups wherever they divide the batch.

At the MOVi-C case this is the program benchmarks/gpu_run.py's step benchmark compiles, so that
the second compilation can come from JAX's persistent cache.
"""
    recipe = movi_c.get_config()
    config = authors_case.case_config(recipe, case)
    config.data.chunk_length = case["frames"]
    if recipe.loss_group_size and case["batch"] % recipe.loss_group_size == 0:
        config.loss_group_size = recipe.loss_group_size
    return config


def case_video(case: dict) -> jax.Array:
    """The case's video as our pipeline makes it (the authors' resize and normalisation): [B, T, H, W, 3]."""
    source, _ = authors_case.random_video(case)
    size = (case["image_size"],) * 2
    return jnp.asarray(np.stack([transforms.normalize(transforms.resize_bicubic(v, size, "torch"), "imagenet") for v in source]))


def float32_matmul_error() -> float:
    """Largest relative error of a 256³ float32 matmul at JAX's default precision against float64."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(256, 256)), rng.normal(size=(256, 256))
    product = np.asarray(jnp.dot(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)), np.float64)
    exact = x @ y
    return float(np.max(np.abs(product - exact)) / np.max(np.abs(exact)))


def _is_oom(error: BaseException) -> bool:
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


class OurStep:
    """Our jitted train step in one dtype on the first device, compiled and warmed up (as train_speed.measure)."""

    def __init__(self, case: dict, state_dict: dict | None, dtype: str):
        config = case_config(case)
        config.model.dtype = config.model.encoder.backbone_dtype = dtype
        model = build_model(config.model)
        mesh = sharding.make_mesh(jax.devices()[:1])
        layout = train_state.state_layout(model, config, mesh)
        state = jax.jit(layout.init_state, out_shardings=layout.shardings)(jax.random.key(0))
        if state_dict is not None:
            params = jax.device_put(convert(state_dict, config.model)[0], layout.shardings.params)
            state = state.replace(params=params)
        state = state.replace(step=jnp.int32(case["global_step"]))  # SSync active.
        self.batch = {"video": jax.device_put(case_video(case), sharding.batch_sharding(mesh))}
        step_fn = jax.jit(
            train_state.make_train_step(model, layout.tx, layout.schedule, config),
            donate_argnums=0,
            out_shardings=(layout.shardings, sharding.replicated(mesh)),
        )
        try:
            started = time.perf_counter()
            self.compiled = step_fn.lower(state, self.batch).compile()
            self.compile_seconds = time.perf_counter() - started
            cost = costs.step_cost(self.compiled, state)
            self.flops, self.buffer_bytes = cost.flops, cost.buffer_bytes
            self.state = state
            self.run()  # Warm-up.
        except Exception as error:
            if _is_oom(error):
                raise OutOfMemory(f"ours/{dtype}: {str(error)[:300]}") from error
            raise
        stats = jax.devices()[0].memory_stats() or {}
        self.peak_bytes = stats.get("peak_bytes_in_use")

    def run(self) -> float:
        start = time.perf_counter()
        self.state, scalars = self.compiled(self.state, self.batch)
        jax.block_until_ready(scalars)
        return time.perf_counter() - start


class AuthorsStep:
    """Their step in benchmarks/authors_worker.py, on `device`, timed there (setup excluded)."""

    def __init__(self, python: str, repo: str, case_name: str, overrides: dict, device: str, threads: int):
        self.process = subprocess.Popen(
            [python, os.path.join(REPO, "benchmarks", "authors_worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore"),
        )
        fraction = os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION")  # Theirs gets the share ours gets.
        self.info = self._ask(
            {
                "case": case_name, "overrides": overrides, "threads": threads, "device": device,
                "authors_repo": os.path.abspath(repo), "memory_fraction": float(fraction) if fraction else None,
            }
        )  # fmt: skip
        self.names_shapes = [(name, tuple(shape)) for name, shape in self.info.pop("state")]

    def _ask(self, message: dict) -> dict:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the authors' worker stopped (its error is above); run benchmarks/authors_worker.py by hand")
        return json.loads(line)

    def step(self, precision: str) -> dict:
        """One timed step: "float32", "16-mixed" (Lightning's precision=16) or an autocast dtype ("bfloat16")."""
        request = {} if precision == "float32" else {"precision": precision} if precision == "16-mixed" else {"autocast": precision}
        reply = self._ask({"step": True, **request})
        if reply.get("oom"):
            raise OutOfMemory(f"theirs/{precision}: {reply['error']}")
        return reply

    def flops(self) -> dict:
        return self._ask({"flops": True})

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"step": False}) + "\n")
                self.process.stdin.close()
            except BrokenPipeError:
                pass
        self.process.wait(timeout=120)


def authors_unavailable(python: str, repo: str, device: str) -> str | None:
    """Why their side cannot run here, or None."""
    if not os.path.isfile(os.path.join(repo, "SSync", "models.py")):
        return f"no bundle: their repository is not at {repo} (benchmarks/gpu_bundle.sh makes it)"
    probe = f"import {AUTHORS_MODULES}; print(torch.cuda.is_available())"
    try:
        result = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=300)
    except OSError as error:
        return f"no torch: {python} does not run ({error})"
    if result.returncode:
        lines = result.stderr.strip().splitlines()
        return f"no torch or their packages in {python}: {lines[-1] if lines else 'import failed'}"
    if device == "cuda" and result.stdout.strip() != "True":
        return f"torch in {python} sees no CUDA device"
    return None


def _side(seconds: list[float], batch: int, flops: float, peak: float | None, memory: int | None) -> dict:
    median = statistics.median(seconds)
    return {
        "seconds_per_step": median,
        "seconds_all": seconds,
        "clips_per_second": batch / median,
        "flops_per_step": flops,
        "tflops_per_second": flops / median / 1e12,
        "mfu": flops / median / peak if peak else None,
        "peak_memory_gib": memory / 2**30 if memory is not None else None,
    }


def run(
    authors_python: str,
    authors_repo: str,
    smoke: bool,
    rounds: int,
    deadline_s: float | None,
    threads: int,
    batch: int | None = None,
) -> dict:
    """The comparison; see the module docstring. Returns the JSON's object."""
    started = time.monotonic()
    device = jax.devices()[0]
    torch_device = "cuda" if device.platform == "gpu" else "cpu"
    case_name = "small" if smoke else "movi_c"
    overrides = dict(SMOKE_CASE) if smoke else {}
    batch = batch or (SMOKE_BATCH if smoke else AUTHORS_BATCH)
    skipped = authors_unavailable(authors_python, authors_repo, torch_device)
    result = {
        "case": case_name,
        "device": device.device_kind,
        "platform": device.platform,
        "memory_fraction_per_side": float(os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"]),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
        "ours_float32_matmul_relative_error": float32_matmul_error(),
        "authors": {"status": "skipped", "reason": skipped} if skipped else {"status": "ran"},
        "tried_batches": [],
    }
    while True:
        gc.collect()  # What an attempt that ran out of memory left, now that its exception is gone.
        case = dict(authors_case.CASES[case_name], **overrides, batch=batch)
        authors, ours = None, {}
        try:
            state_dict = None
            if not skipped:
                authors = AuthorsStep(authors_python, authors_repo, case_name, dict(overrides, batch=batch), torch_device, threads)
                for precision in THEIRS * WARMUP_STEPS:  # Their first steps allocate; GradScaler settles.
                    authors.step(precision)
                state_dict = authors_case.random_state(authors.names_shapes, case["seed"])
            for dtype in OURS:
                ours[dtype] = OurStep(case, state_dict, dtype)
            break
        except OutOfMemory as error:
            result["tried_batches"].append({"batch": batch, "out_of_memory": str(error)})
            if authors:
                authors.close()
            ours.clear()
            jax.clear_caches()
            if batch == 1:
                raise RuntimeError("batch 1 does not fit on this device")
            batch //= 2
    shape = [batch, case["frames"], case["image_size"], case["image_size"], 3]
    weights = "the case's random state dict in their layout (authors_case.random_state), converted for ours"
    result.update(batch=batch, video_shape=shape, case_sizes=case, weights=weights if authors else "our random init")
    times = {f"ours/{d}": [] for d in OURS}
    try:
        if authors:
            result["authors"].update(authors.info)
            counted = authors.flops()
            result["authors"]["torch_flop_counter_flops_per_step"] = counted["flops"]
            if "error" in counted:
                result["authors"]["torch_flop_counter_error"] = counted["error"]
            times = {**{f"theirs/{p}": [] for p in THEIRS}, **times}
        theirs_memory, skipped_steps = {p: 0 for p in THEIRS}, 0
        for index in range(rounds):
            if index and deadline_s and time.monotonic() - started > deadline_s:
                break
            if authors:
                for precision in THEIRS:
                    reply = authors.step(precision)
                    times[f"theirs/{precision}"].append(reply["seconds"])
                    theirs_memory[precision] = max(theirs_memory[precision], reply["peak_memory_bytes"] or 0)
                    skipped_steps += bool(reply.get("optimizer_step_skipped"))
            for dtype, step in ours.items():
                times[f"ours/{dtype}"].append(step.run())
    finally:
        if authors:
            authors.close()
    result["rounds"] = len(times["ours/float32"])
    if authors:  # GradScaler skips the optimizer where a float16 gradient overflowed: a shorter step.
        result["authors"]["timed_16_mixed_steps_skipped_by_grad_scaler"] = skipped_steps
    sides = {}
    for name, seconds in times.items():
        side, precision = name.split("/")
        flops = ours[precision if side == "ours" else {"16-mixed": "bfloat16"}.get(precision, precision)].flops
        peak = train_speed.peak_flops(device.device_kind, PEAK_DTYPE[precision], None)
        if side == "ours":
            memory = ours[precision].peak_bytes
        else:
            memory = theirs_memory[precision] if torch_device == "cuda" else None
        sides[name] = _side(seconds, batch, flops, peak, memory)
        if side == "ours":
            sides[name]["compiled_buffer_gib"] = ours[precision].buffer_bytes / 2**30
            sides[name]["compile_seconds"] = ours[precision].compile_seconds
    result["sides"] = sides
    result["flops_source"] = (
        "XLA cost analysis of our whole jitted step (backbone forward included), per dtype; theirs credited with "
        "ours of the same width (16-mixed: bfloat16); authors.torch_flop_counter_flops_per_step: torch's "
        "FlopCounterMode over their float32 forward and backward (matmuls, convolutions, attention only)"
    )
    result["speedup"] = {
        f"{o} over {t}": sides[t]["seconds_per_step"] / sides[o]["seconds_per_step"]
        for o in sides
        if o.startswith("ours/")
        for t in sides
        if t.startswith("theirs/")
    }
    result["machine"] = machine.describe()
    return result


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    result = run(
        options.authors_python, options.authors_repo, options.smoke, options.rounds or (1 if options.smoke else 5),
        options.deadline_s, options.threads, options.batch,
    )  # fmt: skip
    with open(options.out, "w") as file:
        json.dump(gpu_run.finite(result), file, indent=1, allow_nan=False)
    for name, side in result["sides"].items():
        mfu = f"{100 * side['mfu']:.1f} %" if side["mfu"] is not None else "-"
        print(f"  {name:18s} {side['seconds_per_step']:8.3f} s/step {side['clips_per_second']:8.1f} clips/s  MFU {mfu}")
    for name, value in result["speedup"].items():
        print(f"  {name}: {value:.2f}x")


if __name__ == "__main__":
    flags.DEFINE_string("authors_python", sys.executable, "A Python with torch and their packages (default: this one).")
    flags.DEFINE_string("authors_repo", os.path.join(REPO, "gpu_bundle", "SSync"), "Their repository at the pinned commit.")
    flags.DEFINE_string("out", None, "The JSON to write.", required=True)
    flags.DEFINE_bool("smoke", False, "A tiny case and one round: the same code in seconds, e.g. on a CPU.")
    flags.DEFINE_integer("rounds", None, "Timed rounds (default 5; 1 with --smoke).", lower_bound=1)
    flags.DEFINE_integer("batch", None, "First batch to try (default their 64; 2 with --smoke).", lower_bound=1)
    flags.DEFINE_float("deadline_s", None, "Start no new round after this many seconds (at least one round runs).")
    flags.DEFINE_integer("threads", os.cpu_count() or 1, "torch CPU threads.", lower_bound=1)
    app.run(main)
