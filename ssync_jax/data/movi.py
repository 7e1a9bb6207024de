r"""Random access to MOVi-format datasets: `data_source`, which the grain pipeline reads.

Kubric publishes MOVi as TFDS tfrecord shards (gs://kubric-public/tfds), which cannot be read by
index; `movi_convert.convert` rewrites them as array_record, keeping only the fields a config reads
(its module docstring says which, how large they are and how a conversion resumes). The command
line is this module's:

    python -m ssync_jax.data.movi_convert --name movi_c/128x128:1.0.0 \
        --data_dir gs://kubric-public/tfds --out_dir ~/tensorflow_datasets \
        [--fields=video,segmentations,depth] [--splits=train,validation]

`data_source` reads a converted MOVi or the generated `synthetic_movi` (generating it on first use)
by index, as a grain RandomAccessDataSource whose items are dicts of numpy arrays. The features are
read from the dataset's own `features.json`, so a conversion that kept only some fields is decoded
as it was written, and only the fields asked for are decoded. A dataset that is missing or stored
as tfrecord raises `DatasetNotFoundError` naming where it was looked for and the commands that fix
it; a field left out by the conversion raises `FieldsNotConvertedError` naming it and the
`movi_convert --fields` to re-run.
"""

import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ssync_jax import logs

logs.import_tensorflow_quietly()  # TensorFlow's C++ start-up lines stay off stderr (--log_libraries shows them).
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402
from etils import epath  # noqa: E402
from PIL import Image  # noqa: E402

from ssync_jax import errors  # noqa: E402
from ssync_jax.data import synthetic_movi  # noqa: E402

# What training and evaluation read by default, and what `convert` keeps unless told otherwise;
# real MOVi also carries large depth, flow, normal and object-coordinate maps.
DEFAULT_FIELDS = ("video", "segmentations")
FALLBACK_DATASET = f"{synthetic_movi.NAME}/{synthetic_movi.DEFAULT_CONFIG}"
KUBRIC_DATA_DIR = "gs://kubric-public/tfds"
# Small per-video entries (frame count, size, name, ...) that every conversion keeps.
METADATA = "metadata"
# `metadata/{field}_range` is the (min, max) that decodes a uint16 field; it goes with its field.
RANGE_SUFFIX = "_range"
# Written into a conversion's directory (by `movi_convert`) before its first shard: the fields it keeps.
FIELDS_FILE = "converted_fields.json"


class DatasetNotFoundError(errors.InputNotFoundError):
    """A dataset is not prepared in random-access form where it was looked for."""


class FieldsNotConvertedError(DatasetNotFoundError):
    """Fields asked of a dataset were left out when it was converted."""


def _display_name(name: str) -> str:
    """`movi_c/128x128:1.0.0` -> `MOVi-C (movi_c/128x128:1.0.0)`; other names unchanged."""
    dataset = name.split("/")[0].split(":")[0]
    if dataset.startswith("movi_") and len(dataset) == len("movi_c"):
        return f"MOVi-{dataset[-1].upper()} ({name})"
    return name


def _data_dir_or_default(data_dir: str | os.PathLike | None) -> str:
    return os.fspath(data_dir) if data_dir is not None else tfds.core.constants.get_default_data_dir()


def find_builder(name: str, data_dir: str, ways_out: str) -> tfds.core.DatasetBuilder:
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
        f"Either convert it: python -m ssync_jax.data.movi_convert --name {name} --data_dir "
        f"{KUBRIC_DATA_DIR} --out_dir {out_dir}, or train on the generated dataset: "
        f"--config.data.name={FALLBACK_DATASET}"
    )


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
        features: the features the records hold (the dataset's features.json).
        fields: feature paths to decode (see `data_source`); None = all.
        """
        self.records = records
        # tfds' numpy parser fails on ragged fields left out of a partial spec, so every field is
        # parsed (cheap: still-encoded bytes) and only the chosen ones are decoded.
        self._parser = tfds.core.example_parser.ExampleParserNp(features.get_serialized_info())
        if fields is not None:
            features = tfds.decode.PartialDecoding(field_tree(fields)).extract_features(features)
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


def field_tree(fields: Sequence[str]) -> dict[str, Any]:
    """("video", "instances/bboxes") -> {"video": True, "instances": {"bboxes": True}}."""
    tree: dict[str, Any] = {}
    for field in fields:
        *parents, leaf = field.split("/")
        node = tree
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = True
    return tree


def _feature_paths(infos: dict[str, Any], prefix: str = "") -> set[str]:
    """Every path of a nested TensorInfo dict, leaves and their parents: {"metadata",
    "metadata/width", ...}."""
    paths = set()
    for key, info in infos.items():
        paths.add(f"{prefix}{key}")
        if isinstance(info, dict):
            paths |= _feature_paths(info, f"{prefix}{key}/")
    return paths


def _convert_field(path: str) -> str:
    """The `movi_convert --fields` name that keeps a feature path: `metadata/depth_range` -> `depth`,
    `instances/bboxes` -> `instances`."""
    top, _, rest = path.partition("/")
    if top == METADATA and rest.endswith(RANGE_SUFFIX):
        return rest.removesuffix(RANGE_SUFFIX)
    return top


def _check_fields(
    name: str, data_dir: str, features: tfds.features.FeaturesDict, fields: Sequence[str]
) -> None:
    """Raises FieldsNotConvertedError naming the fields the stored features lack and the
    conversion that provides them."""
    present = _feature_paths(features.get_tensor_info())
    missing = [field for field in fields if field not in present]
    if not missing:
        return
    stored = sorted(key for key in features if key != METADATA)
    wanted = list(dict.fromkeys([*stored, *(_convert_field(path) for path in missing)]))
    source_dir = KUBRIC_DATA_DIR if name.startswith("movi_") else "TFRECORD_DIR"
    raise FieldsNotConvertedError(
        f"{_display_name(name)} under {data_dir} has no field(s) {missing}: it holds "
        f"{','.join(stored)} (movi_convert --fields={','.join(stored)}). Convert it again with them into a "
        f"new directory: python -m ssync_jax.data.movi_convert --name {name} --data_dir {source_dir} "
        f"--out_dir NEW_DIR --fields={','.join(wanted)}"
    )


def data_source(
    name: str,
    split: str,
    data_dir: str | os.PathLike | None = None,
    *,
    fields: Sequence[str] | None = DEFAULT_FIELDS,
    prepare_if_missing: bool = True,
) -> MoviDataSource:
    """Random-access examples of a MOVi-format dataset: converted MOVi or `synthetic_movi`.

    The features are read from the dataset's own `features.json`, so a conversion that kept only
    some fields is decoded as it was written.

    Args:
        name: TFDS name, e.g. `movi_c/128x128:1.0.0` or `synthetic_movi/c_64x64`.
        split: `train`, `validation`, `test` or a TFDS slice such as `train[:10]`.
        data_dir: TFDS directory; None = TFDS's default (TFDS_DATA_DIR or ~/tensorflow_datasets).
        fields: feature paths to decode (`video`, `instances/bboxes`, `metadata/depth_range`, ...);
            None = all stored. Fields not chosen are skipped before decoding (no PNG decoding, no
            array building). Real MOVi's 16-bit 3-channel `normal` and `object_coordinates` need
            OpenCV to decode.
        prepare_if_missing: generate `synthetic_movi` when it is not there yet.

    Returns:
        MoviDataSource whose items are dicts with video uint8 [s, h, w, 3], segmentations uint8
        [s, h, w, 1] and the other chosen fields in the layout of the data interface.

    Raises:
        DatasetNotFoundError: the dataset is not under `data_dir`, with the commands that fix it.
        FieldsNotConvertedError (a DatasetNotFoundError): a chosen field was not kept when the
            dataset was converted; names it and the `movi_convert --fields` to re-run.
    """
    data_dir = _data_dir_or_default(data_dir)
    if name.startswith(f"{synthetic_movi.NAME}/") or name == synthetic_movi.NAME:
        builder = _synthetic_builder(name, data_dir, prepare_if_missing)
    else:
        builder = find_builder(name, data_dir, _ways_out(name, data_dir))
        if builder.info.file_format != tfds.core.FileFormat.ARRAY_RECORD:
            raise DatasetNotFoundError(
                f"{_display_name(name)} under {data_dir} is stored as "
                f"{builder.info.file_format.value}, which has no random access. Convert it: python "
                f"-m ssync_jax.data.movi_convert --name {name} --data_dir {data_dir} --out_dir "
                "OTHER_DIR, then pass OTHER_DIR as the data directory."
            )
    # Not `builder.info.features`: a registered builder (synthetic_movi) gives its code's features,
    # which a conversion may have reduced.
    features = tfds.features.FeatureConnector.from_config(os.fspath(builder.data_path))
    if fields is not None:
        _check_fields(name, data_dir, features, fields)
    records = builder.as_data_source(split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
    return MoviDataSource(records, features, fields)


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
