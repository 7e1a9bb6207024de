r"""Training input pipeline throughput at the MOVi-C training shape (4 x 336^2 frames, batch 64).

    python -m benchmarks.pipeline                      # in-memory 128^2 videos, 0 and 2 workers
    python -m benchmarks.pipeline --dataset=synthetic_movi/c_128x128 --data_dir=DIR   # + real data

Prints batches/s and videos/s per worker count, and the main process's CPU seconds per batch; the
first batch (worker start-up) is not timed.
"""

import contextlib
import time

from absl import app
from absl import flags
import numpy as np

from ssync_jax.data import pipeline

_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Global batch size (one process).")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 336, "Square model input size.")
_CHUNK_LENGTH = flags.DEFINE_integer("chunk_length", 4, "Frames per training chunk.")
_NUM_BATCHES = flags.DEFINE_integer("num_batches", 5, "Timed batches per measurement.")
_WORKERS = flags.DEFINE_list("workers", ["0", "2"], "Worker counts to measure.")
_NUM_VIDEOS = flags.DEFINE_integer("num_videos", 32, "Videos in the in-memory source.")
_DATASET = flags.DEFINE_string("dataset", None, "Also measure this prepared dataset.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data directory of --dataset.")


def _in_memory_source(num_videos: int) -> list[dict]:
    """Random 24-frame 128^2 uint8 videos and segmentations, laid out as the builder yields them."""
    rng = np.random.default_rng(0)
    return [
        {
            "video": rng.integers(0, 256, (24, 128, 128, 3), dtype=np.uint8),
            "segmentations": rng.integers(0, 11, (24, 128, 128, 1), dtype=np.uint8),
        }
        for _ in range(num_videos)
    ]


def _measure(source, num_workers: int) -> tuple[float, float]:
    """Returns (batches/s, main-process CPU s/batch) over the batches after an untimed warm-up.

    On a shared machine wall-clock rates swing with the load; the CPU time of the main process is
    steadier (with 0 workers it is the whole cost of a batch, with workers the consumer's share).
    """
    dataset = pipeline.train_dataset(
        source,
        image_size=(_IMAGE_SIZE.value, _IMAGE_SIZE.value),
        chunk_length=_CHUNK_LENGTH.value,
        global_batch_size=_BATCH_SIZE.value,
        seed=0,
        normalization="imagenet",
        num_workers=num_workers,
        process_index=0,
        process_count=1,
    )
    with contextlib.closing(iter(dataset)) as iterator:
        next(iterator)
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(_NUM_BATCHES.value):
            next(iterator)
        cpu_per_batch = (time.process_time() - start_cpu) / _NUM_BATCHES.value
        return _NUM_BATCHES.value / (time.perf_counter() - start), cpu_per_batch


def main(argv):
    del argv
    sources = {f"in-memory {_NUM_VIDEOS.value} x 24x128x128": _in_memory_source(_NUM_VIDEOS.value)}
    if _DATASET.value:
        from ssync_jax.data import movi  # Lazy: TensorFlow/TFDS only when real data is asked for.

        sources[f"{_DATASET.value} (train)"] = movi.data_source(
            _DATASET.value,
            "train",
            _DATA_DIR.value,
            fields=pipeline.source_fields(("video", "segmentations")),
            prepare_if_missing=False,
        )
    shape = f"{_BATCH_SIZE.value} x {_CHUNK_LENGTH.value} x {_IMAGE_SIZE.value}^2, imagenet"
    for name, source in sources.items():
        baseline = None
        for workers in (int(w) for w in _WORKERS.value):
            rate, cpu_per_batch = _measure(source, workers)
            baseline = baseline or rate
            print(
                f"{name} -> {shape}, {workers} workers: {rate:.2f} batches/s "
                f"({rate * _BATCH_SIZE.value:.0f} videos/s, {rate / baseline:.2f}x the first), "
                f"main-process CPU {cpu_per_batch:.2f} s/batch",
                flush=True,
            )


if __name__ == "__main__":
    app.run(main)
