"""Throughput of the procedural MOVi-format generator (single process), with a per-stage breakdown.

    python -m benchmarks.generator                      # c_64x64, c_128x128, e_128x128, 20 videos each
    python -m benchmarks.generator --configs e_128x128 --videos 50 --size 96

Prints videos/s (wall clock), CPU seconds per video (exceeds wall when XLA uses several cores) and
how the time splits into scene sampling + physics, rendering and labels/quantisation/packing.
Compilation (once per spec) is timed separately and excluded from the rates.
"""

import argparse
import dataclasses
import time

import jax
import numpy as np

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {list(CONFIGS)}")
    parser.add_argument("--videos", type=int, default=20, help="videos timed per config")
    parser.add_argument("--size", type=int, default=None, help="override height = width")
    parser.add_argument("--frames", type=int, default=None, help="override num_frames (default 24)")
    args = parser.parse_args()

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; {args.videos} videos per config")
    for name in args.configs.split(","):
        spec = CONFIGS[name]
        if args.size:
            spec = dataclasses.replace(spec, height=args.size, width=args.size)
        if args.frames:
            spec = dataclasses.replace(spec, num_frames=args.frames)
        compile_seconds, _, _ = _timed(generate_video, spec, 0)
        walls, cpus, objects = [], [], []
        for seed in range(1, args.videos + 1):
            wall, cpu, example = _timed(generate_video, spec, seed)
            walls.append(wall)
            cpus.append(cpu)
            objects.append(example["metadata"]["num_instances"])
        stages = np.mean([_stages(spec, seed) for seed in range(1, args.videos + 1)], axis=0)
        total = np.mean(walls)
        rest = total - stages.sum()
        print(
            f"{name:>10} {spec.height}x{spec.width}x{spec.num_frames}, {np.mean(objects):.1f} objects avg: "
            f"{1 / total:6.1f} videos/s ({1000 * total:.0f} ms wall, {1000 * np.mean(cpus):.0f} ms CPU per video; "
            f"first call incl. compile {compile_seconds:.1f} s)"
        )
        print(
            f"{'':>10} breakdown: sampling+physics {1000 * stages[0]:.0f} ms, rendering {1000 * stages[1]:.0f} ms, "
            f"labels+quantisation+packing {1000 * rest:.0f} ms"
        )


if __name__ == "__main__":
    main()
