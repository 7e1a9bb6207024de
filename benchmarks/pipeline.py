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


def in_memory_source(num_videos: int, size: int = 128, num_frames: int = 24) -> list[dict]:
    """Random uint8 videos and segmentations, laid out as the builder yields them.

    Args:
        num_videos: length of the source.
        size: frame height = width.
        num_frames: frames per video.

    Returns:
        Examples with "video" [num_frames, size, size, 3] and "segmentations" [num_frames, size, size, 1].
    """
    rng = np.random.default_rng(0)
    return [
        {
            "video": rng.integers(0, 256, (num_frames, size, size, 3), dtype=np.uint8),
            "segmentations": rng.integers(0, 11, (num_frames, size, size, 1), dtype=np.uint8),
        }
        for _ in range(num_videos)
    ]


def measure(
    source: pipeline.Source,
    *,
    batch_size: int,
    image_size: int,
    chunk_length: int,
    normalization: str,
    num_workers: int,
    num_batches: int,
    warmup_batches: int = 1,
) -> tuple[float, float]:
    """Times `num_batches` training batches after `warmup_batches` untimed ones.

    The first batch waits for worker start-up; the next few may already sit in the read-ahead
    buffers (`prefetch_buffer_size` per thread and worker) and come back at once, so a steady rate
    needs a warm-up past them unless many batches are timed.

    On a shared machine wall-clock rates swing with the load; the CPU time of the main process is
    steadier (with 0 workers it is the whole cost of a batch, with workers the consumer's share).

    Args:
        source: random-access source of MOVi-format examples.
        batch_size: global batch size (one process).
        image_size: square model input size.
        chunk_length: frames per training chunk.
        normalization: "imagenet" | "zero_one" | "minus_one_one".
        num_workers: grain worker processes (0: the main process).
        num_batches: timed batches.
        warmup_batches: untimed batches first (at least 1).

    Returns:
        (batches/s, main-process CPU s/batch).
    """
    dataset = pipeline.train_dataset(
        source,
        image_size=(image_size, image_size),
        chunk_length=chunk_length,
        global_batch_size=batch_size,
        seed=0,
        normalization=normalization,
        num_workers=num_workers,
        process_index=0,
        process_count=1,
    )
    if warmup_batches < 1 or num_batches < 1:
        raise ValueError(f"warmup_batches={warmup_batches} and num_batches={num_batches} must be >= 1.")
    with contextlib.closing(iter(dataset)) as iterator:
        for _ in range(warmup_batches):
            next(iterator)
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(num_batches):
            next(iterator)
        cpu_per_batch = (time.process_time() - start_cpu) / num_batches
        return num_batches / (time.perf_counter() - start), cpu_per_batch


def main(argv):
    del argv
    options = flags.FLAGS
    sources = {f"in-memory {options.num_videos} x 24x128x128": in_memory_source(options.num_videos)}
    if options.dataset:
        from ssync_jax.data import movi  # Lazy: TensorFlow/TFDS only when real data is asked for.

        sources[f"{options.dataset} (train)"] = movi.data_source(
            options.dataset,
            "train",
            options.data_dir,
            fields=pipeline.source_fields(("video", "segmentations")),
            prepare_if_missing=False,
        )
    shape = f"{options.batch_size} x {options.chunk_length} x {options.image_size}^2, imagenet"
    for name, source in sources.items():
        baseline = None
        for workers in (int(w) for w in options.workers):
            rate, cpu_per_batch = measure(
                source,
                batch_size=options.batch_size,
                image_size=options.image_size,
                chunk_length=options.chunk_length,
                normalization="imagenet",
                num_workers=workers,
                num_batches=options.num_batches,
            )
            baseline = baseline or rate
            print(
                f"{name} -> {shape}, {workers} workers: {rate:.2f} batches/s "
                f"({rate * options.batch_size:.0f} videos/s, {rate / baseline:.2f}x the first), "
                f"main-process CPU {cpu_per_batch:.2f} s/batch",
                flush=True,
            )


if __name__ == "__main__":
    # Defined here, not at import: benchmarks/data.py imports this module and takes flags of its own.
    flags.DEFINE_integer("batch_size", 64, "Global batch size (one process).")
    flags.DEFINE_integer("image_size", 336, "Square model input size.")
    flags.DEFINE_integer("chunk_length", 4, "Frames per training chunk.")
    flags.DEFINE_integer("num_batches", 5, "Timed batches per measurement.")
    flags.DEFINE_list("workers", ["0", "2"], "Worker counts to measure.")
    flags.DEFINE_integer("num_videos", 32, "Videos in the in-memory source.")
    flags.DEFINE_string("dataset", None, "Also measure this prepared dataset.")
    flags.DEFINE_string("data_dir", None, "TFDS data directory of --dataset.")
    app.run(main)
