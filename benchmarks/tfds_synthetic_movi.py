r"""Preparing, converting and reading `synthetic_movi`: seconds per video for each step, or the bytes
per video of each field after conversion.

    python -m benchmarks.tfds_synthetic_movi                         # c_64x64, 24 train videos
    python -m benchmarks.tfds_synthetic_movi --config=c_128x128 --num_videos=8
    python -m benchmarks.tfds_synthetic_movi --mode=sizes            # bytes per field, no timing

`--mode=times` prints the seconds per video of `prepare` (render + TFDS encode + write) next to
rendering alone and TFDS encoding alone, then tfrecord -> array_record conversion (all fields) and
`data_source` reads (default fields vs all fields) in videos/s, and the array_record bytes per video.
The renderer is compiled before any timing.

`--mode=sizes` converts the train split with every field and tabulates, per top-level field, the
mean bytes per video of its entries in the converted records (`metadata/{field}_range` counted
with its field), then the record and array_record file bytes per video of a conversion with the
default fields (`movi.DEFAULT_FIELDS` and the rest of `metadata`). The sizes are deterministic.
"""

import collections
import os
import tempfile
import time
from collections.abc import Sequence

import tensorflow as tf
import tensorflow_datasets as tfds
from absl import app, flags

from ssync_jax.data import movi, movi_convert, synthetic, synthetic_movi


def _seconds_per_call(function, count: int) -> float:
    start = time.perf_counter()
    for index in range(count):
        function(index)
    return (time.perf_counter() - start) / count


def field_of_key(key: str) -> str:
    """The `convert --fields` name a record key belongs to: `instances/bboxes/ragged_flat_values` ->
    `instances`, `metadata/depth_range` -> `depth`, `metadata/num_frames` -> `metadata`."""
    top, _, rest = key.partition("/")
    if top == "metadata" and rest.endswith("_range"):
        return rest.removesuffix("_range")
    return top


def field_bytes(record: bytes) -> dict[str, int]:
    """Bytes of each field's entries in one serialized `tf.train.Example`.

    Args:
        record: the serialized example.

    Returns:
        field (see `field_of_key`) -> serialized size of its feature-map entries; the sizes add up
        to the record's length less the few bytes of the Example's own header (tag and length).
    """
    groups = collections.defaultdict(dict)
    for key, value in tf.train.Example.FromString(record).features.feature.items():
        groups[field_of_key(key)][key] = value
    return {field: tf.train.Features(feature=entries).ByteSize() for field, entries in groups.items()}


def mean_field_bytes(records: Sequence[bytes]) -> dict[str, float]:
    """`field_bytes` averaged over records (a field missing from a record counts 0), largest first."""
    totals = collections.Counter()
    for record in records:
        totals.update(field_bytes(record))
    return dict(sorted(((field, total / len(records)) for field, total in totals.items()), key=lambda x: -x[1]))


def size_table(per_field: dict[str, float], default_records: float, default_files: float) -> str:
    """The printed table: one row per field, then the totals of a default conversion.

    Args:
        per_field: mean bytes per video of each field (`mean_field_bytes` of an all-field conversion).
        default_records: mean record bytes per video of a default conversion.
        default_files: array_record file bytes per video of a default conversion.

    Returns:
        Lines of `field  bytes/video  KiB/video  kept by default`.
    """
    kept = set(movi.DEFAULT_FIELDS) | {"metadata"}

    def row(label: str, size: float, note: str = "") -> str:
        return f"{label:<18}{size:>13,.0f}{size / 1024:>11.1f}  {note}".rstrip()

    lines = [f"{'field':<18}{'bytes/video':>13}{'KiB/video':>11}  kept by default"]
    lines += [row(field, size, "yes" if field in kept else "") for field, size in per_field.items()]
    lines.append(row("all fields", sum(per_field.values())))
    lines.append(row("default, records", default_records, f"({', '.join(sorted(kept))})"))
    lines.append(row("default, files", default_files, "(array_record files, block padding included)"))
    return "\n".join(lines)


def _train_records(path) -> list[bytes]:
    builder = tfds.builder_from_directory(os.fspath(path))
    return list(builder.as_data_source("train", deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES))


def _print_sizes(name: str, root: str, count: int) -> None:
    """Converts the train split with every field and with the default ones; prints `size_table`."""
    source = os.path.join(root, "tfrecord")
    dataset = f"synthetic_movi/{name}:1.0.0"
    full = movi_convert.convert(dataset, source, os.path.join(root, "all"), ["train"], None)
    default = movi_convert.convert(dataset, source, os.path.join(root, "default"), ["train"])
    records = _train_records(default)
    files = sum(os.path.getsize(shard) for shard in default.glob("*-train.array_record-*"))
    print(f"{name}: bytes per video after conversion, mean of {count} train videos")
    print(size_table(mean_field_bytes(_train_records(full)), sum(map(len, records)) / count, files / count))


def _print_times(name: str, root: str, count: int) -> None:
    """Times preparing, converting (every field) and reading; prints seconds and rates per video."""
    config = synthetic_movi.make_config(name)
    spec = config.scene_spec()
    features = synthetic_movi.SyntheticMovi(config=config.name).info.features
    example = synthetic.generate_video(spec, 0)  # Compiles the renderer.
    render = _seconds_per_call(lambda seed: synthetic.generate_video(spec, seed), 4)
    encode = _seconds_per_call(lambda _: features.serialize_example(example), 4)
    print(f"  render alone: {render:.3f} s/video; TFDS encode alone: {encode:.3f} s/video")
    start = time.perf_counter()
    synthetic_movi.prepare(name, os.path.join(root, "tfrecord"), file_format="tfrecord")
    seconds = (time.perf_counter() - start) / (count + 2)
    print(f"  prepare: {seconds:.3f} s/video ({1 / seconds:.2f} videos/s)")
    start = time.perf_counter()
    converted = os.path.join(root, "converted")
    # Every field, so that the reads below can compare default fields with all of them.
    path = movi_convert.convert(
        f"synthetic_movi/{name}:1.0.0", os.path.join(root, "tfrecord"), converted, fields=None
    )
    print(f"  convert (all fields): {(count + 2) / (time.perf_counter() - start):.1f} videos/s")
    size = sum(os.path.getsize(shard) for shard in path.glob("*.array_record-*"))
    print(f"  array_record size: {size / (count + 2) / 2**20:.2f} MiB/video")
    for fields in (movi.DEFAULT_FIELDS, None):
        source = movi.data_source(f"synthetic_movi/{name}", "train", converted, fields=fields)
        start = time.perf_counter()
        for index in range(len(source)):
            source[index]
        rate = len(source) / (time.perf_counter() - start)
        print(f"  data_source read, fields={fields or 'all'}: {rate:.1f} videos/s")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    count = options.num_videos
    name = f"{options.config}_train{count}_validation1_test1"
    print(f"{name} on {os.cpu_count()} CPU cores")
    with tempfile.TemporaryDirectory() as root:
        if options.mode == "sizes":
            synthetic_movi.prepare(name, os.path.join(root, "tfrecord"), file_format="tfrecord")
            _print_sizes(name, root, count)
        else:
            _print_times(name, root, count)


if __name__ == "__main__":
    # Defined here, not at import, so that importing this module beside other CLIs' flags cannot clash.
    flags.DEFINE_string("config", "c_64x64", "synthetic_movi config (without sizes).")
    flags.DEFINE_integer("num_videos", 24, "Train videos to prepare (validation/test: 1).", lower_bound=1)
    flags.DEFINE_enum("mode", "times", ["times", "sizes"], "Seconds per step, or bytes per field.")
    app.run(main)
