"""Throughput of the procedural MOVi-format generator (single process), with a per-stage breakdown.

    python -m benchmarks.generator                      # c_64x64, c_128x128, e_128x128, 20 videos each
    python -m benchmarks.generator --configs e_128x128 --videos 50 --size 96

Prints videos/s (wall clock), CPU seconds per video (exceeds wall when XLA uses several cores) and
how the time splits into scene sampling + physics, rendering and labels/quantisation/packing.
Compilation (once per spec) is timed separately and excluded from the rates.
"""

import dataclasses
import time

import jax
import numpy as np
from absl import app, flags

from ssync_jax.data import synthetic_movi
from ssync_jax.data.synthetic import SceneSpec, generate_video, geometry, physics, render
from ssync_jax.data.synthetic.generate import renderer_inputs
from ssync_jax.data.synthetic.scene import sample_scene

# The scene specs of our TFDS configs (MOVi-C-like: 3..10 objects, static camera; MOVi-E-like:
# 11..23 objects, linearly moving camera).
CONFIGS = {
    name: synthetic_movi.make_config(name).scene_spec()
    for name in ("c_64x64", "c_128x128", "e_128x128")
}


def _timed(fn, *args, **kwargs) -> tuple[float, float, object]:
    """(wall seconds, process CPU seconds, result) of one call, waiting for jax results."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = jax.block_until_ready(fn(*args, **kwargs))
    return time.perf_counter() - wall, time.process_time() - cpu, result


def _stages(spec: SceneSpec, seed: int) -> tuple[float, float]:
    """Wall seconds of (sampling + physics, rendering) for one scene, as generate_video runs them."""
    wall = time.perf_counter()
    scene = sample_scene(spec, np.random.default_rng(seed))
    trajectories = physics.simulate(
        scene.bodies, spec.num_frames, spec.frame_rate, spec.physics_substeps, padded_count=spec.max_objects
    )
    physics_seconds = time.perf_counter() - wall
    focal = geometry.focal_length_pixels(spec.focal_length, spec.sensor_width, spec.width)
    inputs = renderer_inputs(
        spec,
        scene,
        trajectories,
        geometry.quaternion_to_matrix(trajectories.quaternions),
        geometry.quaternion_to_matrix(scene.camera_quaternions),
        focal,
    )
    render_seconds, _, _ = _timed(render.render_video, inputs, height=spec.height, width=spec.width)
    return physics_seconds, render_seconds


@dataclasses.dataclass(frozen=True)
class GeneratorTiming:
    """Per-video cost of `generate_video` for one spec, compilation excluded.

    Attributes:
        compile_seconds: wall seconds of the first call (compiles the renderer for this spec).
        wall_seconds: mean wall seconds per video after it.
        cpu_seconds: mean process CPU seconds per video (above wall when XLA uses several cores).
        mean_objects: mean number of objects per generated scene.
    """

    compile_seconds: float
    wall_seconds: float
    cpu_seconds: float
    mean_objects: float

    @property
    def videos_per_second(self) -> float:
        """Generated videos per wall-clock second."""
        return 1 / self.wall_seconds


def scene_spec(name: str, size: int | None = None, frames: int | None = None) -> SceneSpec:
    """The scene spec of config `name` (a key of CONFIGS), optionally resized or shortened.

    Args:
        name: one of CONFIGS.
        size: overrides height = width when given.
        frames: overrides num_frames when given.

    Returns:
        The spec.
    """
    if name not in CONFIGS:
        raise ValueError(f"Unknown generator config {name!r}; choose from {list(CONFIGS)}.")
    spec = CONFIGS[name]
    if size:
        spec = dataclasses.replace(spec, height=size, width=size)
    if frames:
        spec = dataclasses.replace(spec, num_frames=frames)
    return spec


def time_generator(spec: SceneSpec, num_videos: int) -> GeneratorTiming:
    """Times `generate_video` on seeds 1..num_videos after a compiling call on seed 0.

    Args:
        spec: what to generate.
        num_videos: videos timed.

    Returns:
        The timing.
    """
    compile_seconds, _, _ = _timed(generate_video, spec, 0)
    walls, cpus, objects = [], [], []
    for seed in range(1, num_videos + 1):
        wall, cpu, example = _timed(generate_video, spec, seed)
        walls.append(wall)
        cpus.append(cpu)
        objects.append(example["metadata"]["num_instances"])
    return GeneratorTiming(compile_seconds, float(np.mean(walls)), float(np.mean(cpus)), float(np.mean(objects)))


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; {options.videos} videos per config")
    for name in options.configs:
        spec = scene_spec(name, options.size, options.frames)
        timing = time_generator(spec, options.videos)
        stages = np.mean([_stages(spec, seed) for seed in range(1, options.videos + 1)], axis=0)
        rest = timing.wall_seconds - stages.sum()
        print(
            f"{name:>10} {spec.height}x{spec.width}x{spec.num_frames}, {timing.mean_objects:.1f} objects avg: "
            f"{timing.videos_per_second:6.1f} videos/s ({1000 * timing.wall_seconds:.0f} ms wall, "
            f"{1000 * timing.cpu_seconds:.0f} ms CPU per video; "
            f"first call incl. compile {timing.compile_seconds:.1f} s)"
        )
        print(
            f"{'':>10} breakdown: sampling+physics {1000 * stages[0]:.0f} ms, rendering {1000 * stages[1]:.0f} ms, "
            f"labels+quantisation+packing {1000 * rest:.0f} ms"
        )


if __name__ == "__main__":
    # Defined here, not at import, so that importing this module beside other CLIs' flags cannot clash.
    flags.DEFINE_list("configs", list(CONFIGS), f"Comma-separated subset of {list(CONFIGS)}.")
    flags.DEFINE_integer("videos", 20, "Videos timed per config.", lower_bound=1)
    flags.DEFINE_integer("size", None, "Override height = width.")
    flags.DEFINE_integer("frames", None, "Override num_frames (default 24).")
    app.run(main)
