r"""Preparing, converting and reading `synthetic_movi`: seconds per video for each step.

    python -m benchmarks.tfds_synthetic_movi                         # c_64x64, 24 train videos
    python -m benchmarks.tfds_synthetic_movi --config=c_128x128 --num_videos=8

Prints the seconds per video of `prepare` (render + TFDS encode + write) next to rendering alone and
TFDS encoding alone, then tfrecord -> array_record conversion and `data_source` reads (default
fields vs all fields) in videos/s, and the array_record bytes per video. The renderer is compiled
before any timing.
"""

import os
import tempfile
import time

from absl import app
from absl import flags

from ssync_jax.data import movi
from ssync_jax.data import synthetic
from ssync_jax.data import synthetic_movi

_CONFIG = flags.DEFINE_string("config", "c_64x64", "synthetic_movi config (without sizes).")
_NUM_VIDEOS = flags.DEFINE_integer("num_videos", 24, "Train videos to prepare (validation/test: 1).")


def _seconds_per_call(function, count: int) -> float:
    start = time.perf_counter()
    for index in range(count):
        function(index)
    return (time.perf_counter() - start) / count


def main(argv):
    del argv
    count = _NUM_VIDEOS.value
    name = f"{_CONFIG.value}_train{count}_validation1_test1"
    config = synthetic_movi.make_config(name)
    spec = config.scene_spec()
    features = synthetic_movi.SyntheticMovi(config=config.name).info.features
    example = synthetic.generate_video(spec, 0)  # Compiles the renderer.
    render = _seconds_per_call(lambda seed: synthetic.generate_video(spec, seed), 4)
    encode = _seconds_per_call(lambda _: features.serialize_example(example), 4)
    print(f"{name} on {os.cpu_count()} CPU cores")
    print(f"  render alone: {render:.3f} s/video; TFDS encode alone: {encode:.3f} s/video")
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        synthetic_movi.prepare(name, os.path.join(root, "tfrecord"), file_format="tfrecord")
        seconds = (time.perf_counter() - start) / (count + 2)
        print(f"  prepare: {seconds:.3f} s/video ({1 / seconds:.2f} videos/s)")
        start = time.perf_counter()
        converted = os.path.join(root, "converted")
        path = movi.convert(f"synthetic_movi/{name}:1.0.0", os.path.join(root, "tfrecord"), converted)
        print(f"  convert: {(count + 2) / (time.perf_counter() - start):.1f} videos/s")
        size = sum(os.path.getsize(shard) for shard in path.glob("*.array_record-*"))
        print(f"  array_record size: {size / (count + 2) / 2**20:.2f} MiB/video")
        for fields in (movi.DEFAULT_FIELDS, None):
            source = movi.data_source(f"synthetic_movi/{name}", "train", converted, fields=fields)
            start = time.perf_counter()
            for index in range(len(source)):
                source[index]
            rate = len(source) / (time.perf_counter() - start)
            print(f"  data_source read, fields={fields or 'all'}: {rate:.1f} videos/s")


if __name__ == "__main__":
    app.run(main)
