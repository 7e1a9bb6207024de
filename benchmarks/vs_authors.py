r"""Our MOVi-C training step against the authors' PyTorch step, alternately, in one run on one machine.

    python -m benchmarks.vs_authors --authors_python $AUTHORS_VENV/bin/python \
        --authors_repo $AUTHORS_REPO [--repeats 5] [--threads 2] [--case movi_c]

The authors' side (AUTHORS_REPO: a clone of wjun0830/SSync; AUTHORS_VENV: its torch virtualenv,
both made as tests/fixtures/make_authors_fixture.py says) runs in a subprocess, benchmarks/authors_worker.py; ours runs here. Both build the MOVi-C model
of the case (`ssync_jax.tools.authors_case`: ViT-S/14 with random weights, 11 slots x 64, MLP decoder
3 x 1024, batch 2 x 4 frames x 336²) with the same weights and video, SSync active. One round times,
one after the other, so that no two ever share the cores: their step (forward with SSync's
labelling, four losses, backward, clipping, Adam) in float32 and under PyTorch's CPU bfloat16
autocast (their code's mixed precision on a CPU: Lightning's `precision="bf16"`), then ours
(`ssync_jax.train_state.make_train_step` jitted, compilation excluded):

    ours, frames, float32           the backbone run every step, as theirs
    ours, frames, bfloat16          model.dtype and model.encoder.backbone_dtype = bfloat16
    ours, tokens, float32           from pre-extracted float16 backbone tokens (the backbone skipped)
    ours, tokens, bfloat16          both

Printed: the median of --repeats rounds for each, and each one's speed-up over their float32 and
their bfloat16 step (their median / ours). XLA_FLAGS is printed too (none is needed: the bfloat16
products are written in the form XLA:CPU runs natively, ssync_jax/models/precision.py).
"""

import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from benchmarks import gpu_vs_authors, machine
from configs import movi_c
from ssync_jax import sharding, train_state
from ssync_jax.models import build_model
from ssync_jax.tools import authors_case
from ssync_jax.tools.import_torch_checkpoint import convert

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THEIRS, THEIRS_BF16 = "theirs (PyTorch, float32)", "theirs (PyTorch, bf16 autocast)"
PAUSE_SECONDS = 1.0  # Between their steps and ours: idle OpenMP threads may spin for a while after a step.
VARIANTS = {
    "ours, frames, float32": ("video", "float32"),
    "ours, frames, bfloat16": ("video", "bfloat16"),
    "ours, tokens, float32": ("tokens", "float32"),
    "ours, tokens, bfloat16": ("tokens", "bfloat16"),
}


class OurStep:
    """One of `VARIANTS`: the jitted train step, its state and its batch, on this process's first device."""

    def __init__(self, case: dict, state: dict, inputs: str, dtype: str, tokens: jax.Array | None):
        config = authors_case.case_config(movi_c.get_config(), case)
        config.model.dtype = config.model.encoder.backbone_dtype = dtype
        model = build_model(config.model)
        layout = train_state.state_layout(model, config, sharding.make_mesh(jax.devices()[:1]))
        params, _ = convert(state, config.model)
        self.state = jax.jit(layout.init_state)(jax.random.key(0)).replace(
            params=params, step=jnp.int32(case["global_step"])  # SSync active.
        )
        self.step_fn = jax.jit(train_state.make_train_step(model, layout.tx, layout.schedule, config), donate_argnums=0)
        self.batch = {"video": case_video(case)} if inputs == "video" else {"tokens": tokens}
        self.run()  # Compiles.

    def run(self) -> float:
        start = time.perf_counter()
        self.state, scalars = self.step_fn(self.state, self.batch)
        jax.block_until_ready(scalars)
        return time.perf_counter() - start


def case_video(case: dict) -> jax.Array:
    """The case's video as our pipeline makes it (the authors' resize and normalisation): [B, T, H, W, 3]."""
    from ssync_jax.data import transforms

    source, _ = authors_case.random_video(case)
    size = (case["image_size"],) * 2
    frames = [transforms.normalize(transforms.resize_bicubic(v, size, "torch"), "imagenet") for v in source]
    return jnp.asarray(np.stack(frames))


def case_tokens(case: dict, state: dict) -> jax.Array:
    """The frozen backbone's tokens of the case's video, float16 as extract_features stores them."""
    config = authors_case.case_config(movi_c.get_config(), case)
    model = build_model(config.model)
    params, _ = convert(state, config.model)
    outputs = jax.jit(lambda p, v: model.apply({"params": p}, v))(params, case_video(case))
    return outputs["target"].astype(jnp.float16)  # [B, T, N, C]


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    case = authors_case.CASES[options.case]
    authors = gpu_vs_authors.AuthorsStep(options.authors_python, options.authors_repo, options.case, {}, "cpu", options.threads)
    try:
        state = authors_case.random_state(authors.names_shapes, case["seed"])
        tokens = case_tokens(case, state)
        ours = {name: OurStep(case, state, inputs, dtype, tokens) for name, (inputs, dtype) in VARIANTS.items()}
        authors.step("float32")  # Their first steps allocate.
        authors.step("bfloat16")
        times = {THEIRS: [], THEIRS_BF16: [], **{name: [] for name in ours}}
        for _ in range(options.repeats):
            times[THEIRS].append(authors.step("float32")["seconds"])
            times[THEIRS_BF16].append(authors.step("bfloat16")["seconds"])
            time.sleep(PAUSE_SECONDS)
            for name, step in ours.items():
                times[name].append(step.run())
    finally:
        authors.close()
    theirs, theirs_bf16 = statistics.median(times[THEIRS]), statistics.median(times[THEIRS_BF16])
    print(
        f"MOVi-C training step, batch {case['batch']} x {case['frames']} x {case['image_size']}², SSync active; "
        f"{machine.describe()}; torch {authors.info['torch']} with {options.threads} threads; "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; median of {options.repeats} alternating rounds"
    )
    for name, seconds in times.items():
        median = statistics.median(seconds)
        spread = f"{min(seconds):.2f}-{max(seconds):.2f}"
        print(
            f"  {name:34s} {median:7.2f} s  (range {spread})  speed-up over theirs: "
            f"float32 {theirs / median:5.2f}x, bfloat16 autocast {theirs_bf16 / median:5.2f}x"
        )


if __name__ == "__main__":
    flags.DEFINE_string("authors_python", None, "The torch virtualenv's python.", required=True)
    flags.DEFINE_string("authors_repo", None, "A checkout of wjun0830/SSync.", required=True)
    flags.DEFINE_enum("case", "movi_c", list(authors_case.CASES), "The comparison case (authors_case.CASES).")
    flags.DEFINE_integer("repeats", 5, "Alternating rounds; medians are printed.", lower_bound=1)
    flags.DEFINE_integer("threads", os.cpu_count() or 1, "torch threads (XLA uses every core).", lower_bound=1)
    app.run(main)
