r"""Conversion of Kubric's MOVi tfrecords to array_record, which `movi.data_source` reads by index.

Kubric publishes MOVi as TFDS tfrecord shards (gs://kubric-public/tfds), which cannot be read by
index. `convert` writes them as array_record shards keeping only the fields a config reads: each
record (a `tf.train.Example`) is re-serialized without the feature keys of the other fields, and
the TFDS metadata (`features.json`, `dataset_info.json`) is rewritten to describe only the kept
features, with the file format switched, so `tfds.builder(name, data_dir=OUT_DIR).as_data_source()`
reads the result (for datasets without builder code here, like MOVi; a registered builder such as
`synthetic_movi` would decode with its code's features, and `movi.data_source` reads both). The
command line is `movi`'s:

    python -m ssync_jax.data.movi_convert --name movi_c/128x128:1.0.0 \
        --data_dir gs://kubric-public/tfds --out_dir ~/tensorflow_datasets \
        [--fields=video,segmentations,depth] [--splits=train,validation]

`--fields` names top-level features: by default `video,segmentations`; add `depth`,
`forward_flow`, `backward_flow` (the names of `pipeline.FIELDS`), `instances` or any other
top-level feature of the dataset, or pass `all`. `metadata` is always kept, except the
`{field}_range` entries of the fields left out (they only serve to decode those fields). A field
left out cannot be read later: `movi.data_source` names it and this flag. `--fields=all` copies the
records byte for byte. The flows and depth are most of a video's bytes; what each field costs is
measured by `python -m benchmarks.tfds_synthetic_movi --mode=sizes` (figures in docs/DATA.md).

Conversion resumes: each shard is written under a temporary name and renamed when complete, so a
re-run skips finished shards; `dataset_info.json` is written last and lists only the splits whose
shards are all present, so an interrupted conversion never looks complete. The kept fields are
recorded in the output (`converted_fields.json`) before any shard is written, and a conversion
with other fields into the same directory is refused rather than mixed.
"""

from ssync_jax import cli  # First: it quiets TensorFlow before anything loads it.

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ssync_jax import logs

logs.import_tensorflow_quietly()  # Its C++ start-up lines stay off stderr (--log_libraries shows them).
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402
import tqdm  # noqa: E402
from absl import app, flags  # noqa: E402
from array_record.python import array_record_module  # noqa: E402
from etils import epath  # noqa: E402
from google.protobuf import json_format  # noqa: E402

from ssync_jax import errors  # noqa: E402
from ssync_jax.data import movi  # noqa: E402

# TFDS's prefix for unfinished files; shards are renamed from it when fully written.
_INCOMPLETE_PREFIX = "incomplete."
# What tfds writes array_record shards with: one record per chunk, for fast random access.
_ARRAY_RECORD_OPTIONS = "group_size:1"


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


def _chosen_fields(features: tfds.features.FeaturesDict, fields: Sequence[str] | None) -> list[str]:
    """The top-level fields to keep, sorted; None = all but `metadata`.

    Raises:
        ValueError: `fields` is empty or names a field the dataset lacks (or `metadata`).
    """
    names = sorted(name for name in features if name != movi.METADATA)
    if fields is None:
        return names
    unknown = [field for field in fields if field not in names]
    if unknown or not fields:
        raise errors.ConfigError(
            f"--fields={','.join(fields)} must name some of this dataset's fields: {','.join(names)} "
            f"(or all); unknown: {unknown}. {movi.METADATA} is always kept."
        )
    return [name for name in names if name in fields]


def _kept_paths(features: tfds.features.FeaturesDict, fields: Sequence[str]) -> tuple[str, ...]:
    """Feature paths a conversion keeps: `fields` and the `metadata` entries but the
    `{field}_range` of every field left out, e.g. ("video", "metadata/num_frames", ...)."""
    dropped = {name for name in features if name not in fields}
    metadata = features[movi.METADATA] if movi.METADATA in features else ()  # noqa: SIM401 (no .get)
    kept_metadata = [
        f"{movi.METADATA}/{key}"
        for key in metadata
        if not (key.endswith(movi.RANGE_SUFFIX) and key.removesuffix(movi.RANGE_SUFFIX) in dropped)
    ]
    return (*fields, *kept_metadata)


def _is_kept(name: str, kept_paths: Sequence[str]) -> bool:
    """Whether a feature key or statistics name (`instances/bboxes/ragged_row_lengths_0`, `metadata`)
    belongs to a kept path or is a parent of one."""
    return any(
        name == path or name.startswith(f"{path}/") or path.startswith(f"{name}/") for path in kept_paths
    )


def _kept_record(record: bytes, kept_paths: Sequence[str]) -> bytes:
    """A serialized `tf.train.Example` without the feature keys outside `kept_paths`; unchanged
    bytes when nothing is dropped."""
    example = tf.train.Example.FromString(record)
    entries = example.features.feature
    dropped = [key for key in entries if not _is_kept(key, kept_paths)]
    if not dropped:
        return record
    for key in dropped:
        del entries[key]
    return example.SerializeToString(deterministic=True)


def _convert_shard(
    source: epath.Path,
    destination: epath.Path,
    expected: int,
    kept_paths: Sequence[str],
    progress: tqdm.tqdm,
) -> None:
    """Writes a tfrecord shard's records, reduced to `kept_paths`, into array_record, renaming into
    place only when all `expected` records are written."""
    temporary = destination.parent / f"{_INCOMPLETE_PREFIX}{destination.name}"
    writer = array_record_module.ArrayRecordWriter(os.fspath(temporary), _ARRAY_RECORD_OPTIONS)
    count = 0
    try:
        for record in tf.data.TFRecordDataset(os.fspath(source)).as_numpy_iterator():
            writer.write(_kept_record(record, kept_paths))
            count += 1
            progress.update(1)
    finally:
        writer.close()
    if count != expected:
        temporary.unlink()
        raise errors.ConfigError(f"{source} holds {count} records, its dataset_info.json says {expected}.")
    temporary.rename(destination)


def _claim_output(out_path: epath.Path, fields: Sequence[str]) -> None:
    """Records `fields` in a new output directory, or checks them against the recorded ones, so that
    shards with different fields never mix.

    Raises:
        ValueError: `out_path` holds a conversion with other fields, or files without a record.
    """
    record = out_path / movi.FIELDS_FILE
    if record.exists():
        recorded = json.loads(record.read_text())["fields"]
        if sorted(recorded) != sorted(fields):
            raise errors.ConfigError(
                f"{out_path} holds a conversion with --fields={','.join(recorded)}; converting "
                f"--fields={','.join(fields)} into it would mix the two. Re-run with "
                f"--fields={','.join(recorded)}, pass another --out_dir, or delete {out_path}."
            )
        return
    # A crash between writing the record and renaming it leaves only an incomplete.* file.
    if any(not path.name.startswith(_INCOMPLETE_PREFIX) for path in out_path.iterdir()):
        raise errors.ConfigError(
            f"{out_path} holds files but no {movi.FIELDS_FILE}: it was written by other code (an older "
            "convert kept every field). Pass another --out_dir or delete that directory."
        )
    temporary = out_path / f"{_INCOMPLETE_PREFIX}{movi.FIELDS_FILE}"
    temporary.write_text(json.dumps({"fields": list(fields)}))
    temporary.rename(record)


def _keep_entries(entries: Any, name_of: Callable[[Any], str], kept_paths: Sequence[str]) -> None:
    """Removes, in place, the entries of a repeated proto field whose name is not kept."""
    kept = [entry for entry in entries if _is_kept(name_of(entry), kept_paths)]
    del entries[:]
    entries.extend(kept)


def _info_json(info: tfds.core.DatasetInfo, kept_paths: Sequence[str]) -> str:
    """dataset_info.json's text, its feature schema and statistics (written by older TFDS) reduced
    to the kept features."""
    proto = type(info.as_proto)()
    proto.CopyFrom(info.as_proto)
    if proto.HasField("schema"):
        _keep_entries(proto.schema.feature, lambda feature: feature.name, kept_paths)
    for split in (split for split in proto.splits if split.HasField("statistics")):
        _keep_entries(
            split.statistics.features,
            lambda feature: feature.name or "/".join(feature.path.step),
            kept_paths,
        )
    return json_format.MessageToJson(proto, sort_keys=True)


def _write_info_last(
    info: tfds.core.DatasetInfo,
    features: tfds.features.FeaturesDict,
    kept_paths: Sequence[str],
    out_path: epath.Path,
) -> None:
    """Writes TFDS metadata describing only `features`, so that dataset_info.json, which marks a
    dataset as present, lands last."""
    staging = out_path / f"{_INCOMPLETE_PREFIX}metadata"
    if staging.exists():
        staging.rmtree()
    staging.mkdir()
    info.write_to_directory(staging, all_metadata=False)  # The source's license or metadata.json.
    features.save_config(staging)  # features.json and the kept features' label files.
    info_file = staging / tfds.core.constants.DATASET_INFO_FILENAME
    info_file.write_text(_info_json(info, kept_paths))
    for path in staging.iterdir():
        if path != info_file:
            path.replace(out_path / path.name)
    info_file.replace(out_path / info_file.name)
    staging.rmdir()


def _converted_split(split_info: Any, shards: list[tuple[epath.Path, epath.Path]]) -> Any:
    """A split's info with num_bytes ("size of the files" in TFDS) that of its array_record files,
    not the source's, which counts the dropped fields."""
    return split_info.replace(num_bytes=sum(destination.stat().length for _, destination in shards))


def convert(
    name: str,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    splits: Sequence[str] | None = None,
    fields: Sequence[str] | None = movi.DEFAULT_FIELDS,
) -> epath.Path:
    """Rewrites a TFDS tfrecord dataset as array_record, keeping only `fields` (and `metadata`).

    Args:
        name: `dataset/config:version`, e.g. `movi_c/128x128:1.0.0`.
        data_dir: TFDS directory holding the tfrecord version (local or gs://).
        out_dir: TFDS directory to write the array_record version into.
        splits: splits to convert; None = all.
        fields: top-level features to keep (see the module docstring); None = all.

    Returns:
        The converted dataset's directory, `out_dir/dataset/config/version`.

    Raises:
        movi.DatasetNotFoundError: the source is not under `data_dir`.
        ValueError: the source is not tfrecord, a split or field is unknown, `out_dir` is the
            source's directory or holds a conversion with other fields, or a finished-looking
            shard has the wrong number of records.
    """
    source = movi.find_builder(
        name,
        os.fspath(data_dir),
        f"Point --data_dir at a TFDS directory holding it (Kubric's copy, {movi.KUBRIC_DATA_DIR}, "
        "needs internet), or train on the generated dataset: "
        f"--config.data.name={movi.FALLBACK_DATASET}",
    )
    info = source.info
    if info.file_format not in (None, tfds.core.FileFormat.TFRECORD):
        raise errors.ConfigError(f"{name} under {data_dir} is {info.file_format.value}, not tfrecord.")
    unknown = set(splits or ()) - set(info.splits)
    if unknown:
        raise errors.ConfigError(f"{name} has no split(s) {sorted(unknown)}; it has {sorted(info.splits)}.")
    fields = _chosen_fields(info.features, fields)
    kept_paths = _kept_paths(info.features, fields)
    out_path = epath.Path(out_dir) / info.full_name
    if os.path.abspath(os.fspath(out_path)) == os.path.abspath(os.fspath(source.data_path)):
        raise errors.ConfigError(f"--out_dir must differ from --data_dir: {name}'s metadata would be replaced.")
    out_path.mkdir(parents=True, exist_ok=True)
    _claim_output(out_path, fields)

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
                    raise errors.ConfigError(
                        f"{destination} holds {found} records, {expected} expected; delete it and "
                        "re-run to convert that shard again."
                    )
                progress.update(expected)
                continue
            _convert_shard(source_path, destination, expected, kept_paths, progress)

    complete = [
        _converted_split(info.splits[split], shards[split])
        for split in info.splits
        if all(destination.exists() for _, destination in shards[split])
    ]
    info.set_file_format(tfds.core.FileFormat.ARRAY_RECORD, override=True, override_if_initialized=True)
    info.set_splits(tfds.core.SplitDict(complete))
    features = tfds.decode.PartialDecoding(movi.field_tree(kept_paths)).extract_features(info.features)
    _write_info_last(info, features, kept_paths, out_path)
    return out_path


def main(argv: Sequence[str]) -> None:
    """CLI: `python -m ssync_jax.data.movi_convert --name ... --out_dir ... [--fields ...]`."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments {list(argv[1:])}; the options are --flag=value, see --help.")
    options = flags.FLAGS
    fields = options.fields
    if "all" in fields and len(fields) > 1:
        raise errors.ConfigError(f"--fields={','.join(fields)}: `all` stands alone.")
    out_path = convert(options.name, options.data_dir, options.out_dir, options.splits, None if fields == ["all"] else fields)
    print(f"{options.name} converted to {out_path}", file=sys.stderr)


if __name__ == "__main__":
    # Defined here, not at import, so that importing this module beside other CLIs' flags cannot clash.
    flags.DEFINE_string("name", None, "e.g. movi_c/128x128:1.0.0")
    cli.DEFINE_path("data_dir", movi.KUBRIC_DATA_DIR, "TFDS dir with tfrecords")
    cli.DEFINE_path("out_dir", None, "TFDS dir to write array_record into")
    flags.DEFINE_list("splits", None, "Comma-separated splits; default: all splits")
    flags.DEFINE_list(
        "fields",
        list(movi.DEFAULT_FIELDS),
        "Comma-separated top-level features to keep (metadata always is), e.g. "
        "video,segmentations,depth,forward_flow,backward_flow,instances; or all",
    )
    flags.mark_flags_as_required(["name", "out_dir"])
    cli.run(main)
