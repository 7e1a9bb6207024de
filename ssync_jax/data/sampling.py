"""How training draws from a source of videos, the same for every training pipeline (frames in
`pipeline`, pre-extracted tokens in `precomputed`): this process's shard, shuffled anew each epoch and
repeated forever, one random aligned chunk and flip per video, batched before any worker process, read
ahead in threads.

The same seed therefore gives the same videos, chunks and flips in the same batches whether a run
reads frames or their tokens.
"""

import grain
import numpy as np

from ssync_jax import errors
from ssync_jax.data import transforms


def random_chunk_and_flip(
    num_frames: int, chunk_length: int, flip_prob: float, rng: np.random.Generator
) -> tuple[slice, bool]:
    """A training example's random choices, drawn in this order from its generator.

    Every training pipeline (frames in `pipeline`, pre-extracted tokens in `precomputed`) draws through
    this function, so the same seed picks the same chunk and flip of the same video in both.

    Args:
        num_frames: frames in the video.
        chunk_length: frames per chunk.
        flip_prob: probability of a horizontal flip.
        rng: the per-example generator.

    Returns:
        (the chunk's frames, whether to flip).
    """
    start = transforms.aligned_chunk_start(num_frames, chunk_length, rng)
    flip = bool(rng.random() < flip_prob)
    return slice(start, start + chunk_length), flip


def process_shard(
    global_batch_size: int, process_index: int | None, process_count: int | None
) -> tuple[int, int, int]:
    """Returns (process_index, process_count, per-process batch size), defaulting to jax's."""
    if process_index is None or process_count is None:
        import jax  # Lazy: only the default needs jax; tests and workers inject or skip it.

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= process_index < process_count:
        raise errors.ConfigError(
            f"process_index={process_index} must be in [0, process_count={process_count})."
        )
    if global_batch_size < 1 or global_batch_size % process_count:
        raise errors.ConfigError(
            f"Global batch size {global_batch_size} must be a positive multiple of the "
            f"{process_count} JAX processes; change the batch size in config.data."
        )
    return process_index, process_count, global_batch_size // process_count


def with_prefetch(
    dataset: grain.MapDataset, num_workers: int, prefetch_buffer_size: int
) -> grain.IterDataset:
    """Reads batches in `prefetch_buffer_size` threads (one batch each), in workers if any."""
    if num_workers < 0 or prefetch_buffer_size < 1:
        raise errors.ConfigError(
            f"num_workers={num_workers} must be >= 0 and "
            f"prefetch_buffer_size={prefetch_buffer_size} >= 1."
        )
    read_options = grain.ReadOptions(
        num_threads=prefetch_buffer_size, prefetch_buffer_size=prefetch_buffer_size
    )
    iterable = dataset.to_iter_dataset(read_options)
    if num_workers:
        iterable = iterable.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
    return iterable


def shuffled_batches(
    num_videos: int,
    example: grain.transforms.RandomMap,
    *,
    global_batch_size: int,
    seed: int,
    num_workers: int,
    prefetch_buffer_size: int,
    process_index: int | None,
    process_count: int | None,
) -> grain.IterDataset:
    """The sharding, shuffling, seeding and batching shared by every training pipeline.

    Args:
        num_videos: videos in the source; `example` maps an index in [0, num_videos) to an example.
        example: index -> example, given a per-element generator.
        global_batch_size: batch over all processes.
        seed: fixes the shuffle order and every per-element generator.
        num_workers: grain worker processes (0: main process).
        prefetch_buffer_size: batches read ahead (per worker).
        process_index: this process (default `jax.process_index()`).
        process_count: all processes (default `jax.process_count()`).

    Returns:
        An infinite grain IterDataset of this process's batches; its iterators support
        get_state/set_state.
    """
    process_index, process_count, batch_size = process_shard(
        global_batch_size, process_index, process_count
    )
    shard = grain.MapDataset.range(num_videos)[process_index::process_count]
    if len(shard) == 0:
        raise errors.ConfigError(
            f"The source has {num_videos} videos, too few for process {process_index} of "
            f"{process_count}; use a larger split or fewer processes."
        )
    dataset = (
        shard.seed(seed)
        .shuffle()
        .repeat()
        .random_map(example)
        .batch(batch_size, drop_remainder=True)
    )
    return with_prefetch(dataset, num_workers, prefetch_buffer_size)
