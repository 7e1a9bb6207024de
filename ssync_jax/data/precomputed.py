"""Training batches of a frozen backbone's tokens, extracted once by `ssync_jax.tools.extract_features`.

With a frozen DINOv2 the backbone's forward pass is a large part of every training step; run once
over the training split, its tokens are then read instead of frames:

    python -m ssync_jax.tools.extract_features --config configs/movi_c.py --out DIR
    python main.py --config configs/movi_c.py --workdir W --config.data.precomputed_features=DIR

A feature directory holds array_record shards and `metadata.json`, written last (an interrupted
extraction has `extraction.json` instead and is never read). Record (2·v + c)·T + t holds frame t
of video v, c = 0 as stored and c = 1 mirrored horizontally (the tokens of a mirrored frame are not
the mirrored tokens, so both are extracted): its [N, C] tokens, row-major, little-endian, in the
metadata's dtype, without header.

Training batches follow the video pipeline's sampling (`ssync_jax.data.sampling`): the same
sharding, shuffling, per-example chunk and flip draws and iterator state, so one seed picks the
same chunks and flips of the same videos on frames and on tokens:
    tokens       float16|float32 [B, T, N, C]   (T = chunk_length; the metadata's dtype)
    valid        bool            [B]
    video_index  int32           [B]
Validation and evaluation still read frames: their metrics need pixel-level segmentations.
"""

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import grain
import ml_collections
import numpy as np

from ssync_jax import errors
from ssync_jax.data import sampling

METADATA = "metadata.json"
PLAN = "extraction.json"  # The metadata of an extraction in progress; renamed to METADATA at the end.
FORMAT_VERSION = 1
STORAGE_DTYPES = ("float16", "float32")
# Metadata entries that must equal the experiment config's (`config_metadata`) for training.
MATCHED = (
    "backbone", "dinov2_variant", "weights", "backbone_dtype", "image_size", "normalization", "bicubic", "dataset", "split"
)


def weights_id(weights: str | None) -> str | None:
    """A weights location as compared across runs: absolute for local paths, hub names unchanged."""
    if weights and os.path.exists(weights):
        return os.path.abspath(weights)
    return weights


def config_metadata(config: ml_collections.ConfigDict, split: str) -> dict[str, Any]:
    """What the tokens of `split` depend on, as the experiment config sets it (the `MATCHED` keys).

    Args:
        config: the experiment config (`model.encoder`, `data`).
        split: the dataset split the tokens are of.

    Returns:
        {key: JSON value} for every key of `MATCHED`.
    """
    encoder = config.model.encoder
    if encoder.backbone != "dinov2":
        raise errors.ConfigError(
            f"Pre-extracted tokens stand in for a frozen DINOv2 backbone, but config.model.encoder.backbone="
            f"{encoder.backbone!r}; unset config.data.precomputed_features to train on video."
        )
    return {
        "backbone": encoder.backbone,
        "dinov2_variant": encoder.dinov2_variant,
        "weights": weights_id(encoder.weights),
        "backbone_dtype": encoder.backbone_dtype,
        "image_size": [int(x) for x in config.data.image_size],
        "normalization": config.data.normalization,
        "bicubic": config.data.bicubic,
        "dataset": config.data.name,
        "split": split,
    }


def shard_names(split: str, num_shards: int) -> list[str]:
    """File names of a split's shards, in record order."""
    return [f"{split}.array_record-{k:05d}-of-{num_shards:05d}" for k in range(num_shards)]


def record_index(video: int, flipped: bool, frame: int, num_frames: int) -> int:
    """Record of frame `frame` of video `video` (mirrored if `flipped`), see the module docstring."""
    return (2 * video + int(flipped)) * num_frames + frame


def token_bytes(tokens: np.ndarray, dtype: str) -> bytes:
    """One frame's tokens [N, C] as a record: `dtype`, little-endian, no header."""
    return np.ascontiguousarray(tokens, np.dtype(dtype).newbyteorder("<")).tobytes()


def read_metadata(directory: str) -> dict[str, Any]:
    """The metadata of a complete feature directory.

    Raises:
        FileNotFoundError: `directory` is missing or its extraction is unfinished, with the fix.
    """
    path = os.path.join(directory, METADATA)
    if not os.path.isfile(path):
        unfinished = os.path.isfile(os.path.join(directory, PLAN))
        state = "holds an unfinished extraction" if unfinished else "holds no extracted features"
        raise errors.InputNotFoundError(
            f"config.data.precomputed_features={directory} {state} (no {METADATA}). Run (or rerun, to "
            f"resume) python -m ssync_jax.tools.extract_features --config CONFIG --out {directory}"
        )
    with open(path) as file:
        metadata = json.load(file)
    if metadata.get("format_version") != FORMAT_VERSION:
        raise errors.ConfigError(
            f"{path} has format version {metadata.get('format_version')}, this code reads {FORMAT_VERSION}; "
            "extract the features again."
        )
    return metadata


def check_matches(metadata: Mapping[str, Any], expected: Mapping[str, Any], directory: str) -> None:
    """Raises ValueError naming every `MATCHED` entry where the features and the config differ."""
    differences = [
        f"{key}: features {metadata.get(key)!r}, config {expected[key]!r}"
        for key in MATCHED
        if metadata.get(key) != expected[key]
    ]
    if differences:
        raise errors.ConfigError(
            f"The features in {directory} were extracted with other settings than this config: "
            f"{'; '.join(differences)}. Extract them again with this config (python -m "
            "ssync_jax.tools.extract_features --config CONFIG --out NEW_DIR) or fix the config."
        )


class _TokenChunk(grain.transforms.RandomMap):
    """Video index -> the tokens of one random aligned chunk, of the mirrored video with `flip_prob`."""

    def __init__(self, records: Sequence[bytes], metadata: Mapping[str, Any], chunk_length: int, flip_prob: float):
        self._records = records
        self._num_frames = metadata["num_frames"]
        self._shape = (int(np.prod(metadata["grid"])), metadata["token_dim"])  # (N, C)
        self._dtype = np.dtype(metadata["dtype"]).newbyteorder("<")
        self._chunk_length = chunk_length
        self._flip_prob = flip_prob

    def random_map(self, element: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        chunk, flip = sampling.random_chunk_and_flip(self._num_frames, self._chunk_length, self._flip_prob, rng)
        first = record_index(element, flip, chunk.start, self._num_frames)
        records = [self._records[i] for i in range(first, first + self._chunk_length)]
        tokens = np.stack([np.frombuffer(r, self._dtype).reshape(self._shape) for r in records])  # [T, N, C]
        return {"tokens": tokens, "valid": np.bool_(True), "video_index": np.int32(element)}


def train_dataset(
    directory: str,
    *,
    chunk_length: int,
    global_batch_size: int,
    seed: int,
    flip_prob: float = 0.5,
    num_workers: int = 0,
    prefetch_buffer_size: int = 2,
    process_index: int | None = None,
    process_count: int | None = None,
) -> grain.IterDataset:
    """Infinite, shuffled training batches of pre-extracted tokens (this process's shard).

    Args:
        directory: a complete feature directory.
        chunk_length: frames per training chunk.
        global_batch_size: batch over all processes; each process yields 1/process_count of it.
        seed: fixes the shuffle order, chunks and flips (as in `pipeline.train_dataset`: both draw through `sampling`).
        flip_prob: probability of reading the mirrored video's tokens.
        num_workers: grain worker processes (0: main process).
        prefetch_buffer_size: batches read ahead (per worker).
        process_index: this process (default `jax.process_index()`).
        process_count: all processes (default `jax.process_count()`).

    Returns:
        A grain IterDataset of batches (see the module docstring); iterators support get_state/set_state.
    """
    metadata = read_metadata(directory)
    if not 0.0 <= flip_prob <= 1.0:
        raise errors.ConfigError(f"flip_prob={flip_prob} must be in [0, 1].")
    paths = [os.path.join(directory, name) for name in metadata["shards"]]
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        raise errors.InputNotFoundError(
            f"{len(missing)} shard(s) listed in {os.path.join(directory, METADATA)} are missing, e.g. "
            f"{missing[0]}; extract the features again (python -m ssync_jax.tools.extract_features --overwrite)."
        )
    records = grain.sources.ArrayRecordDataSource(paths)
    expected = 2 * metadata["num_videos"] * metadata["num_frames"]
    if len(records) != expected:
        raise errors.ConfigError(f"{directory} holds {len(records)} records, its metadata {expected}; extract it again.")
    return sampling.shuffled_batches(
        metadata["num_videos"],
        _TokenChunk(records, metadata, chunk_length, flip_prob),
        global_batch_size=global_batch_size,
        seed=seed,
        num_workers=num_workers,
        prefetch_buffer_size=prefetch_buffer_size,
        process_index=process_index,
        process_count=process_count,
    )


def dataset_from_config(
    config: ml_collections.ConfigDict,
    *,
    seed: int,
    process_index: int | None = None,
    process_count: int | None = None,
) -> grain.IterDataset:
    """The training batches of `config.data.precomputed_features`, after checking they fit the config.

    Args:
        config: the experiment config: `data` (precomputed_features, chunk_length, flip_prob,
            global_batch_size, num_workers, prefetch_buffer_size and the `MATCHED` settings) and
            `model.encoder`.
        seed: the training seed.
        process_index: this process (default `jax.process_index()`).
        process_count: all processes (default `jax.process_count()`).

    Returns:
        A grain IterDataset of token batches.

    Raises:
        FileNotFoundError: the directory holds no complete extraction.
        ValueError: its backbone, weights, image size, normalisation or data differ from the config's.
    """
    data = config.data
    directory = data.precomputed_features
    check_matches(read_metadata(directory), config_metadata(config, data.train_split), directory)
    return train_dataset(
        directory,
        chunk_length=data.chunk_length,
        global_batch_size=data.global_batch_size,
        seed=seed,
        flip_prob=data.flip_prob,
        num_workers=data.num_workers,
        prefetch_buffer_size=data.prefetch_buffer_size,
        process_index=process_index,
        process_count=process_count,
    )
