r"""Runs a config's frozen backbone once over a dataset split and stores the tokens for training.

    python -m ssync_jax.tools.extract_features --config configs/movi_c.py --out ~/features/movi_c \
        [--config.data.data_dir ~/tensorflow_datasets] [--split train] [--batch_size 32] [--dtype float16]
    python main.py --config configs/movi_c.py --workdir W --config.data.precomputed_features=$HOME/features/movi_c

Every video of the split is resized to `config.data.image_size` and normalised as the training
pipeline does, then all its frames, as stored and mirrored, go through the backbone with the weights
of `config.model.encoder.weights` (layout: `ssync_jax/data/precomputed.py`). Size: 2 · frames · N · C
values per video, e.g. 21 MB in float16 for a MOVi-C video with ViT-S/14 at 336², about 200 GB for its
training split. float16 rounds each token to 11 significant bits (relative error <= 2^-11).

Shards are written under a temporary name and renamed when complete; `metadata.json` comes last, so
an interrupted run never looks complete, and rerunning the same command resumes at the first
missing shard. A complete directory is only replaced with --overwrite.
"""

from ssync_jax import cli  # First: it quiets TensorFlow before anything loads it.

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm
from absl import app, flags, logging
from array_record.python import array_record_module
from ml_collections import config_flags

from ssync_jax import errors, paths
from ssync_jax.data import movi, precomputed, transforms
from ssync_jax.models import dinov2_weights, factory

_INCOMPLETE_PREFIX = "incomplete."
# Each record in its own chunk, so that reading one frame decompresses only that frame.
_ARRAY_RECORD_OPTIONS = "group_size:1"
# Plan entries that may change between an interrupted run and its resumption.
_INFORMATIONAL = ("config", "data_dir")


def _check_config(config: ml_collections.ConfigDict, dtype: str) -> None:
    encoder = config.model.encoder
    weights = encoder.get("weights")  # Only DINOv2 encoders have weights to load.
    if encoder.backbone != "dinov2" or not encoder.freeze_backbone or not weights:
        raise errors.ConfigError(
            "Only a frozen, pretrained DINOv2 can be extracted once for all of training: the config has "
            f"backbone={encoder.backbone!r}, freeze_backbone={encoder.freeze_backbone}, weights={weights!r}; "
            "set config.model.encoder.weights (and freeze_backbone=True)."
        )
    if dtype not in precomputed.STORAGE_DTYPES:
        raise errors.ConfigError(f"--dtype {dtype!r} is not one of {precomputed.STORAGE_DTYPES}.")


def _plan(
    config: ml_collections.ConfigDict, config_name: str | None, split: str, dtype: str, source, videos_per_shard: int
) -> dict[str, Any]:
    """The metadata of the extraction about to run (what `precomputed.read_metadata` returns)."""
    if len(source) == 0:
        raise errors.ConfigError(f"Split {split!r} of {config.data.name} is empty; choose another --split.")
    image_size = tuple(int(x) for x in config.data.image_size)
    architecture = dinov2_weights.variant_architecture(config.model.encoder.dinov2_variant)
    patch = architecture["patch_size"]
    if image_size[0] % patch or image_size[1] % patch:
        raise errors.ConfigError(f"config.data.image_size={image_size} is not a multiple of DINOv2's patch size {patch}.")
    num_shards = -(-len(source) // videos_per_shard)
    return {
        "format_version": precomputed.FORMAT_VERSION,
        "config": config_name,
        **precomputed.config_metadata(config, split),
        "data_dir": config.data.data_dir,
        "num_videos": len(source),
        "num_frames": int(source[0]["video"].shape[0]),
        "grid": [image_size[0] // patch, image_size[1] // patch],
        "token_dim": architecture["embed_dim"],
        "dtype": dtype,
        "videos_per_shard": videos_per_shard,
        "shards": precomputed.shard_names(split, num_shards),
    }


def _write_json(path: str, value: dict[str, Any]) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w") as file:
        json.dump(value, file, indent=2, sort_keys=True)
    os.replace(temporary, path)


def _prepare_directory(out: str, plan: dict[str, Any], overwrite: bool) -> None:
    """Makes `out` ready for `plan`: new, resumable (same plan), or cleared with `overwrite`.

    Raises:
        FileExistsError: `out` holds complete features, another unfinished extraction, or other files.
    """
    metadata, in_progress = os.path.join(out, precomputed.METADATA), os.path.join(out, precomputed.PLAN)
    os.makedirs(out, exist_ok=True)
    if os.path.exists(metadata) or os.path.exists(in_progress):
        if os.path.exists(metadata) and not overwrite:
            raise errors.WouldOverwriteError(
                f"{out} already holds complete features; pass --overwrite to replace them or choose another --out."
            )
        if os.path.exists(in_progress) and not overwrite:
            with open(in_progress) as file:
                previous = json.load(file)
            keys = (plan.keys() | previous.keys()) - set(_INFORMATIONAL)
            differences = sorted(k for k in keys if plan.get(k) != previous.get(k))
            if differences:
                raise errors.WouldOverwriteError(
                    f"{out} holds an unfinished extraction with other settings (differing: {', '.join(differences)}); "
                    "rerun it with its own settings to resume, pass --overwrite to start over, or choose another --out."
                )
        if overwrite:
            _remove_extraction(out)
    elif os.listdir(out):
        raise errors.WouldOverwriteError(f"{out} is not empty and holds no extracted features; choose a new --out directory.")
    _write_json(in_progress, plan)


def _remove_extraction(out: str) -> None:
    """Deletes the files of an extraction from `out`, the metadata first so that it never looks complete."""
    metadata = os.path.join(out, precomputed.METADATA)
    if os.path.exists(metadata):
        os.remove(metadata)
    for name in os.listdir(out):
        ours = name.startswith((precomputed.PLAN, _INCOMPLETE_PREFIX)) or ".array_record-" in name
        if ours:
            os.remove(os.path.join(out, name))


class _PreparedFrames(grain.transforms.Map):
    """Video index -> its frames as stored, then mirrored, as the training pipeline presents them [2T, H, W, 3]."""

    def __init__(self, source, num_frames: int, image_size: tuple[int, int], normalization: str, bicubic: str):
        self._source = source
        self._num_frames = num_frames
        self._image_size = image_size
        self._normalization = normalization
        self._bicubic = bicubic

    def map(self, element: int) -> np.ndarray:
        video = self._source[element]["video"]  # [T, h, w, 3] uint8
        if video.shape[0] != self._num_frames:
            raise errors.ConfigError(
                f"Video {element} has {video.shape[0]} frames, the first {self._num_frames}; feature extraction "
                "(like evaluation's batches of whole videos) needs videos of one length."
            )
        video = transforms.resize_bicubic(video, self._image_size, self._bicubic)  # [T, H, W, 3]
        video = transforms.normalize(video, self._normalization)
        return np.concatenate([video, transforms.flip_horizontal(video)])  # [2T, H, W, 3]


def _frame_batches(videos: Iterator[np.ndarray], batch_size: int) -> Iterator[tuple[np.ndarray, int]]:
    """Frames of consecutive videos regrouped into [batch_size, H, W, 3] (the last zero-padded), and
    how many of each batch are real."""
    pending: list[np.ndarray] = []
    count = 0
    for frames in videos:
        pending.append(frames)
        count += len(frames)
        while count >= batch_size:
            stacked = np.concatenate(pending)
            yield stacked[:batch_size], batch_size
            pending, count = [stacked[batch_size:]], count - batch_size
    if count:
        stacked = np.concatenate(pending)
        padding = np.zeros((batch_size - count, *stacked.shape[1:]), stacked.dtype)
        yield np.concatenate([stacked, padding]), count


def _write_shard(
    path: str, frames: Iterator[np.ndarray], backbone_fn: Callable, batch_size: int, dtype: str, progress: tqdm.tqdm
) -> None:
    """Writes the tokens of `frames` (record order) to `path`, via a temporary file renamed at the end.

    The backbone runs on batch k + 1 while the tokens of batch k are copied and written.
    """
    temporary = os.path.join(os.path.dirname(path), _INCOMPLETE_PREFIX + os.path.basename(path))
    writer = array_record_module.ArrayRecordWriter(temporary, _ARRAY_RECORD_OPTIONS)

    def write(tokens: jax.Array, count: int) -> None:
        host = np.asarray(tokens, np.float32)[:count]  # [count, N, C]
        stored = host.astype(dtype)
        if not np.isfinite(stored).all():
            raise errors.ConfigError(
                f"Tokens up to {np.abs(host).max():.3g} do not fit in {dtype}; extract again with --dtype "
                "float32 --overwrite."
            )
        for frame_tokens in stored:
            writer.write(precomputed.token_bytes(frame_tokens, dtype))
        progress.update(count)

    try:
        pending = None
        for batch, count in _frame_batches(frames, batch_size):
            running = (backbone_fn(batch), count)
            if pending is not None:
                write(*pending)
            pending = running
        if pending is not None:
            write(*pending)
    finally:
        writer.close()
    os.replace(temporary, path)


def extract_features(
    config: ml_collections.ConfigDict,
    out: str,
    *,
    split: str | None = None,
    batch_size: int = 32,
    dtype: str = "float16",
    overwrite: bool = False,
    videos_per_shard: int = 64,
    config_name: str | None = None,
) -> dict[str, Any]:
    """Extracts (or resumes extracting) the backbone tokens of every video of a split.

    Args:
        config: the experiment config (`model.encoder`, `data`: name, data_dir, image_size, normalization).
        out: the feature directory.
        split: dataset split; default `config.data.train_split`.
        batch_size: frames per backbone call.
        dtype: storage dtype, "float16" (half the size) or "float32".
        overwrite: replace complete (or differently configured) features in `out`.
        videos_per_shard: videos per array_record file (the unit of resumption).
        config_name: the config file, recorded in the metadata.

    Returns:
        The metadata written to `out/metadata.json`.
    """
    _check_config(config, dtype)
    split = config.data.train_split if split is None else split
    out = os.path.abspath(out)
    source = movi.data_source(config.data.name, split, config.data.data_dir, fields=("video",))
    plan = _plan(config, config_name, split, dtype, source, videos_per_shard)
    _prepare_directory(out, plan, overwrite)

    backbone = factory.build_backbone(config.model.encoder)
    abstract = jax.eval_shape(backbone.init, jax.random.key(0), jnp.zeros((1, *config.data.image_size, 3)))
    params = factory.load_pretrained_backbone(
        {"encoder": {factory.BACKBONE_NAME: abstract["params"]}}, config.model
    )["encoder"][factory.BACKBONE_NAME]
    apply = jax.jit(backbone.apply)

    def backbone_fn(frames: np.ndarray) -> jax.Array:
        return apply({"params": params}, frames)  # [B, N, C]

    image_size = tuple(int(x) for x in config.data.image_size)
    records_per_video = 2 * plan["num_frames"]
    total = records_per_video * plan["num_videos"]
    with tqdm.tqdm(total=total, unit="frame", desc=f"{config.data.name} {split}") as progress:
        for k, name in enumerate(plan["shards"]):
            first, stop = k * videos_per_shard, min((k + 1) * videos_per_shard, plan["num_videos"])
            path = os.path.join(out, name)
            if os.path.exists(path):  # Finished by an earlier run.
                progress.update((stop - first) * records_per_video)
                continue
            # Threads decode and resize the next videos while the backbone runs.
            videos = (
                grain.MapDataset.range(first, stop)
                .map(
                    _PreparedFrames(
                        source, plan["num_frames"], image_size, config.data.normalization, config.data.bicubic
                    )
                )
                .to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=2))
            )
            with contextlib.closing(iter(videos)) as iterator:
                _write_shard(path, iterator, backbone_fn, batch_size, dtype, progress)
    os.replace(os.path.join(out, precomputed.PLAN), os.path.join(out, precomputed.METADATA))
    logging.info("Wrote the tokens of %d videos to %s", plan["num_videos"], out)
    return plan


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    paths.check_output_folder(flags.FLAGS.out, "--out")  # A folder it creates or resumes.
    extract_features(
        flags.FLAGS.config,
        flags.FLAGS.out,
        split=flags.FLAGS.split,
        batch_size=flags.FLAGS.batch_size,
        dtype=flags.FLAGS.dtype,
        overwrite=flags.FLAGS.overwrite,
        videos_per_shard=flags.FLAGS.videos_per_shard,
        config_name=config_flags.get_config_filename(flags.FLAGS["config"]),
    )


if __name__ == "__main__":
    # Defined here, not at import, so importing `extract_features` beside main.py's flags cannot clash.
    config_flags.DEFINE_config_file("config", None, "Experiment config whose frozen backbone is extracted.")
    cli.DEFINE_path("out", None, "Feature directory (created; resumed when unfinished).")
    flags.DEFINE_string("split", None, "Dataset split; default config.data.train_split.")
    flags.DEFINE_integer("batch_size", 32, "Frames per backbone call.")
    flags.DEFINE_enum("dtype", "float16", list(precomputed.STORAGE_DTYPES), "Storage dtype of the tokens.")
    flags.DEFINE_bool("overwrite", False, "Replace complete or differently configured features in --out.")
    flags.DEFINE_integer("videos_per_shard", 64, "Videos per array_record file (the unit of resumption).")
    flags.mark_flags_as_required(["config", "out"])
    cli.run(main)
