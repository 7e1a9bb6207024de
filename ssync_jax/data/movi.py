r"""Random access to MOVi-format datasets: conversion of Kubric's tfrecords to array_record, and
`data_source`, which the grain pipeline reads.

Kubric publishes MOVi as TFDS tfrecord shards (gs://kubric-public/tfds), which cannot be read by
index. `convert` copies every serialized record unchanged into array_record shards (TFDS stores the
same `tf.train.Example` bytes in both formats) and writes the same TFDS metadata with the file
format switched, so `tfds.builder(name, data_dir=OUT_DIR).as_data_source()` reads the result:

    python -m ssync_jax.data.movi convert --name movi_c/128x128:1.0.0 \
        --data_dir gs://kubric-public/tfds --out_dir ~/tensorflow_datasets

Conversion resumes: each shard is written under a temporary name and renamed when complete, so a
re-run skips finished shards; `dataset_info.json` is written last and lists only the splits whose
shards are all present, so an interrupted conversion never looks complete.
"""

import argparse
import io
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
import tqdm
from array_record.python import array_record_module
from etils import epath
from PIL import Image

from ssync_jax.data import synthetic_movi

# What training and evaluation read; real MOVi also carries large normal and object-coordinate maps.
DEFAULT_FIELDS = ("video", "segmentations")
FALLBACK_DATASET = f"{synthetic_movi.NAME}/{synthetic_movi.DEFAULT_CONFIG}"
KUBRIC_DATA_DIR = "gs://kubric-public/tfds"
# TFDS's prefix for unfinished files; shards are renamed from it when fully written.
_INCOMPLETE_PREFIX = "incomplete."
# What tfds writes array_record shards with: one record per chunk, for fast random access.
_ARRAY_RECORD_OPTIONS = "group_size:1"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not prepared in random-access form where it was looked for."""


def _display_name(name: str) -> str:
    """`movi_c/128x128:1.0.0` -> `MOVi-C (movi_c/128x128:1.0.0)`; other names unchanged."""
    dataset = name.split("/")[0].split(":")[0]
    if dataset.startswith("movi_") and len(dataset) == len("movi_c"):
        return f"MOVi-{dataset[-1].upper()} ({name})"
    return name


def _data_dir_or_default(data_dir: str | os.PathLike | None) -> str:
    return os.fspath(data_dir) if data_dir is not None else tfds.core.constants.get_default_data_dir()


def _find_builder(name: str, data_dir: str, ways_out: str) -> tfds.core.DatasetBuilder:
    """The builder of a prepared dataset, or one DatasetNotFoundError naming it, where it was
    looked for, why it was not found (absent, unreadable, offline) and `ways_out`."""
    reason = ""
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        prepared = builder.is_prepared()
    except (tfds.core.DatasetNotFoundError, tf.errors.OpError, OSError) as error:
        builder, prepared = None, False
        if not isinstance(error, tfds.core.DatasetNotFoundError):  # e.g. gs:// without internet.
            reason = f" ({type(error).__name__}: {str(error).splitlines()[0]})"
    if not prepared:
        version_dir = name.replace(":", "/") if ":" in name else f"{name}/*"
        looked_at = builder.data_path if builder is not None else epath.Path(data_dir) / version_dir
        raise DatasetNotFoundError(
            f"{_display_name(name)} not found under {data_dir}{reason} (looked for {looked_at}/"
            f"dataset_info.json). {ways_out}"
        )
    return builder


def _ways_out(name: str, data_dir: str) -> str:
    out_dir = "LOCAL_DIR" if data_dir == KUBRIC_DATA_DIR else data_dir
    return (
        f"Either convert it: python -m ssync_jax.data.movi convert --name {name} --data_dir "
        f"{KUBRIC_DATA_DIR} --out_dir {out_dir}, or train on the generated dataset: "
        f"--config.data.name={FALLBACK_DATASET}"
    )


def _shard_paths(split_info: Any, out_path: epath.Path) -> list[tuple[epath.Path, epath.Path]]:
    """(tfrecord source, array_record destination) for each shard of a split."""
    destination = split_info.filename_template.replace(data_dir=out_path, filetype_suffix="array_record")
    return list(zip(split_info.filepaths, destination.sharded_filepaths(split_info.num_shards)))


def _num_records(path: epath.Path) -> int:
    reader = array_record_module.ArrayRecordReader(os.fspath(path))
    try:
        return reader.num_records()
    finally:
        reader.close()


def _convert_shard(
    source: epath.Path, destination: epath.Path, expected: int, progress: tqdm.tqdm
) -> None:
    """Copies a tfrecord shard's records into array_record, renaming into place only when all
    `expected` records are written."""
    temporary = destination.parent / f"{_INCOMPLETE_PREFIX}{destination.name}"
    writer = array_record_module.ArrayRecordWriter(os.fspath(temporary), _ARRAY_RECORD_OPTIONS)
    count = 0
    try:
        for record in tf.data.TFRecordDataset(os.fspath(source)).as_numpy_iterator():
            writer.write(record)
            count += 1
            progress.update(1)
    finally:
        writer.close()
    if count != expected:
        temporary.unlink()
        raise ValueError(f"{source} holds {count} records, its dataset_info.json says {expected}.")
    temporary.rename(destination)


def _write_info_last(info: tfds.core.DatasetInfo, out_path: epath.Path) -> None:
    """Writes TFDS metadata so that dataset_info.json, which marks a dataset as present, lands last."""
    staging = out_path / f"{_INCOMPLETE_PREFIX}metadata"
    if staging.exists():
        staging.rmtree()
    staging.mkdir()
    info.write_to_directory(staging)
    info_file = staging / tfds.core.constants.DATASET_INFO_FILENAME
    for path in staging.iterdir():
        if path != info_file:
            path.replace(out_path / path.name)
    info_file.replace(out_path / info_file.name)
    staging.rmdir()


def convert(
    name: str,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    splits: Sequence[str] | None = None,
) -> epath.Path:
    """Rewrites a TFDS tfrecord dataset as array_record with the same records and metadata.

    Args:
        name: `dataset/config:version`, e.g. `movi_c/128x128:1.0.0`.
        data_dir: TFDS directory holding the tfrecord version (local or gs://).
        out_dir: TFDS directory to write the array_record version into.
        splits: splits to convert; None = all.

    Returns:
        The converted dataset's directory, `out_dir/dataset/config/version`.

    Raises:
        DatasetNotFoundError: the source is not under `data_dir`.
        ValueError: the source is not tfrecord, a split is unknown, `out_dir` is the source's
            directory, or a finished-looking shard has the wrong number of records.
    """
    source = _find_builder(
        name,
        os.fspath(data_dir),
        f"Point --data_dir at a TFDS directory holding it (Kubric's copy, {KUBRIC_DATA_DIR}, needs "
        f"internet), or train on the generated dataset: --config.data.name={FALLBACK_DATASET}",
    )
    info = source.info
    if info.file_format not in (None, tfds.core.FileFormat.TFRECORD):
        raise ValueError(f"{name} under {data_dir} is {info.file_format.value}, not tfrecord.")
    unknown = set(splits or ()) - set(info.splits)
    if unknown:
        raise ValueError(f"{name} has no split(s) {sorted(unknown)}; it has {sorted(info.splits)}.")
    out_path = epath.Path(out_dir) / info.full_name
    if os.path.abspath(os.fspath(out_path)) == os.path.abspath(os.fspath(source.data_path)):
        raise ValueError(f"--out_dir must differ from --data_dir: {name}'s metadata would be replaced.")
    out_path.mkdir(parents=True, exist_ok=True)

    shards = {split: _shard_paths(info.splits[split], out_path) for split in info.splits}
    todo = [
        (split, index, source_path, destination)
        for split in (splits or info.splits)
        for index, (source_path, destination) in enumerate(shards[split])
    ]
    total = sum(info.splits[split].shard_lengths[index] for split, index, _, _ in todo)
    with tqdm.tqdm(total=total, unit="videos", desc=f"{name} -> array_record") as progress:
        for split, index, source_path, destination in todo:
            expected = info.splits[split].shard_lengths[index]
            if destination.exists():
                found = _num_records(destination)
                if found != expected:
                    raise ValueError(
                        f"{destination} holds {found} records, {expected} expected; delete it and "
                        "re-run to convert that shard again."
                    )
                progress.update(expected)
                continue
            _convert_shard(source_path, destination, expected, progress)

    complete = [
        info.splits[split]
        for split in info.splits
        if all(destination.exists() for _, destination in shards[split])
    ]
    info.set_file_format(tfds.core.FileFormat.ARRAY_RECORD, override=True, override_if_initialized=True)
    info.set_splits(tfds.core.SplitDict(complete))
    _write_info_last(info, out_path)
    return out_path


class _Uint16PngDecoder(tfds.decode.Decoder):
    """Decodes 16-bit PNG frames with PIL: tfds' numpy path needs OpenCV for uint16 images."""

    def decode_example(self, serialized_example: tf.Tensor) -> tf.Tensor:
        return self.feature.decode_example(serialized_example)

    def decode_example_np(self, serialized_example: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(serialized_example)) as image:
            return np.asarray(image).astype(np.uint16)[..., None]  # [h, w, 1]

    def decode_batch_example_np(self, serialized_examples: np.ndarray) -> np.ndarray:
        return np.stack([self.decode_example_np(frame) for frame in serialized_examples])


def _as_arrays(value: Any, info: tfds.features.TensorInfo) -> Any:
    """tfds' numpy decoding (lists of per-frame / per-instance arrays) -> stacked numpy arrays.

    Fields with one unknown dimension (the instances) become arrays [n, ...]; ragged fields (two
    unknown dimensions: bboxes, bbox_frames) become lists of n arrays [k_i, ...]; text becomes str.
    """
    if info.np_dtype == np.object_:
        if isinstance(value, bytes):
            return value.decode()
        return [item.decode() for item in value]
    if sum(dim is None for dim in info.shape) > 1:
        return [np.asarray(row, info.np_dtype).reshape(-1, *info.shape[2:]) for row in value]
    array = np.asarray(value, info.np_dtype).reshape([-1 if dim is None else dim for dim in info.shape])
    return array[()] if array.ndim == 0 else array


def _nested_as_arrays(example: dict[str, Any], infos: dict[str, Any]) -> dict[str, Any]:
    """Applies `_as_arrays` to every leaf of a decoded example, given its nested TensorInfos."""
    return {
        key: (
            _nested_as_arrays(example[key], info)
            if isinstance(info, dict)
            else _as_arrays(example[key], info)
        )
        for key, info in infos.items()
    }


def _select(serialized: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    """The entries of a parsed example that the nested `kept` structure names."""
    return {
        key: _select(serialized[key], sub) if isinstance(sub, dict) else serialized[key]
        for key, sub in kept.items()
    }


class MoviDataSource:
    """Random access to decoded examples (grain's RandomAccessDataSource protocol)."""

    def __init__(
        self,
        records: Sequence[bytes],
        features: tfds.features.FeaturesDict,
        fields: Sequence[str] | None,
    ):
        """Args:
        records: the split's serialized examples (tfds ArrayRecordDataSource, raw bytes).
        features: the dataset's features.
        fields: feature paths to decode (see `data_source`); None = all.
        """
        self.records = records
        # tfds' numpy parser fails on ragged fields left out of a partial spec, so every field is
        # parsed (cheap: still-encoded bytes) and only the chosen ones are decoded.
        self._parser = tfds.core.example_parser.ExampleParserNp(features.get_serialized_info())
        if fields is not None:
            features = tfds.decode.PartialDecoding(_field_tree(fields)).extract_features(features)
        self.features = features
        self._decoders = {"depth": _Uint16PngDecoder()} if "depth" in features else None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Example `index` as nested numpy arrays (see `_as_arrays`), only the chosen fields."""
        serialized = self._parser.parse_example(self.records[index])
        chosen = _select(serialized, self.features.get_serialized_info())
        example = self.features.decode_example_np(chosen, decoders=self._decoders)
        return _nested_as_arrays(example, self.features.get_tensor_info())


def _field_tree(fields: Sequence[str]) -> dict[str, Any]:
    """("video", "instances/bboxes") -> {"video": True, "instances": {"bboxes": True}}."""
    tree: dict[str, Any] = {}
    for field in fields:
        *parents, leaf = field.split("/")
        node = tree
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = True
    return tree


def data_source(
    name: str,
    split: str,
    data_dir: str | os.PathLike | None = None,
    *,
    fields: Sequence[str] | None = DEFAULT_FIELDS,
    prepare_if_missing: bool = True,
) -> MoviDataSource:
    """Random-access examples of a MOVi-format dataset: converted MOVi or `synthetic_movi`.

    Args:
        name: TFDS name, e.g. `movi_c/128x128:1.0.0` or `synthetic_movi/c_64x64`.
        split: `train`, `validation`, `test` or a TFDS slice such as `train[:10]`.
        data_dir: TFDS directory; None = TFDS's default (TFDS_DATA_DIR or ~/tensorflow_datasets).
        fields: feature paths to decode (`video`, `instances/bboxes`, ...); None = all. Fields not
            chosen are skipped before decoding (no PNG decoding, no array building). Real MOVi's
            16-bit 3-channel `normal` and `object_coordinates` need OpenCV to decode.
        prepare_if_missing: generate `synthetic_movi` when it is not there yet.

    Returns:
        MoviDataSource whose items are dicts with video uint8 [s, h, w, 3], segmentations uint8
        [s, h, w, 1] and the other chosen fields in the layout of the data interface.

    Raises:
        DatasetNotFoundError: the dataset is not under `data_dir`, with the commands that fix it.
    """
    data_dir = _data_dir_or_default(data_dir)
    if name.startswith(f"{synthetic_movi.NAME}/") or name == synthetic_movi.NAME:
        builder = _synthetic_builder(name, data_dir, prepare_if_missing)
    else:
        builder = _find_builder(name, data_dir, _ways_out(name, data_dir))
        if builder.info.file_format != tfds.core.FileFormat.ARRAY_RECORD:
            raise DatasetNotFoundError(
                f"{_display_name(name)} under {data_dir} is stored as "
                f"{builder.info.file_format.value}, which has no random access. Convert it: python "
                f"-m ssync_jax.data.movi convert --name {name} --data_dir {data_dir} --out_dir "
                "OTHER_DIR, then pass OTHER_DIR as the data directory."
            )
    records = builder.as_data_source(split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
    return MoviDataSource(records, builder.info.features, fields)


def _synthetic_builder(name: str, data_dir: str, prepare_if_missing: bool) -> tfds.core.DatasetBuilder:
    """The prepared `synthetic_movi` builder, generating it first when allowed."""
    if prepare_if_missing:
        return synthetic_movi.prepare(name, data_dir)
    builder = synthetic_movi.load_builder(name, data_dir)
    if not builder.is_prepared():
        raise DatasetNotFoundError(
            f"{name} not found under {data_dir} (looked for {builder.data_path}/dataset_info.json)."
            f" Generate it: python -m ssync_jax.data.synthetic_movi --config "
            f"{builder.builder_config.name} --data_dir {data_dir}"
        )
    synthetic_movi.check_prepared(builder, "array_record")
    return builder


def main(argv: list[str] | None = None) -> None:
    """CLI: `python -m ssync_jax.data.movi convert --name ... --data_dir ... --out_dir ...`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    convert_parser = commands.add_parser("convert", help="tfrecord -> array_record (resumable)")
    convert_parser.add_argument("--name", required=True, help="e.g. movi_c/128x128:1.0.0")
    convert_parser.add_argument("--data_dir", default=KUBRIC_DATA_DIR, help="TFDS dir with tfrecords")
    convert_parser.add_argument("--out_dir", required=True, help="TFDS dir to write array_record into")
    convert_parser.add_argument("--splits", nargs="+", default=None, help="default: all splits")
    args = parser.parse_args(argv)
    try:
        out_path = convert(args.name, args.data_dir, args.out_dir, args.splits)
    except (DatasetNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    print(f"{args.name} converted to {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
