"""tfrecord -> array_record conversion and `data_source`: the kept fields' entries unchanged, the
others gone from records and metadata, same examples, resumable, never mixing two sets of fields."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from ssync_jax.data import movi
from ssync_jax.data import movi_convert
from ssync_jax.data import pipeline
from ssync_jax.data import synthetic
from ssync_jax.data import synthetic_movi

TINY = "c_16x16_3frames_train3_validation2_test2"
NAME = f"synthetic_movi/{TINY}:1.0.0"
RAW_BYTES = tfds.decode.DeserializeMethod.RAW_BYTES
# What a default conversion (video, segmentations) keeps of each record: the metadata but the ranges.
DEFAULT_KEYS = {
    "video",
    "segmentations",
    "metadata/video_name",
    "metadata/width",
    "metadata/height",
    "metadata/num_frames",
    "metadata/num_instances",
}


@pytest.fixture(scope="module")
def tfrecord_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tfrecord")
    synthetic_movi.prepare(TINY, directory, file_format="tfrecord", num_shards=2)
    return directory


@pytest.fixture(scope="module")
def converted_dir(tfrecord_dir, tmp_path_factory):
    """Every field converted."""
    directory = tmp_path_factory.mktemp("array_record")
    movi_convert.convert(NAME, tfrecord_dir, directory, fields=None)
    return directory


@pytest.fixture(scope="module")
def default_dir(tfrecord_dir, tmp_path_factory):
    """The default fields converted."""
    directory = tmp_path_factory.mktemp("default_fields")
    movi_convert.convert(NAME, tfrecord_dir, directory)
    return directory


def _dataset_path(data_dir, name: str = NAME) -> str:
    return os.path.join(data_dir, name.replace(":", "/"))


def _tfrecord_records(data_dir, split: str) -> list[bytes]:
    builder = tfds.builder_from_directory(_dataset_path(data_dir))
    paths = [os.fspath(path) for path in builder.info.splits[split].filepaths]
    return list(tf.data.TFRecordDataset(paths).as_numpy_iterator())


def _array_records(data_dir, split: str, name: str = NAME) -> list[bytes]:
    records = tfds.data_source(
        name, split=split, data_dir=data_dir, download=False, deserialize_method=RAW_BYTES
    )
    return list(records)


def _assert_same(actual, expected, where: str = "example", check_dtype: bool = False) -> None:
    """Recursive equality of decoded examples; str == bytes, ragged tensors == lists of rows."""
    if isinstance(expected, dict):
        assert set(actual) == set(expected), where
        for key in expected:
            _assert_same(actual[key], expected[key], f"{where}/{key}", check_dtype)
    elif isinstance(expected, (str, bytes)):
        assert actual == (expected.decode() if isinstance(expected, bytes) else expected), where
    elif isinstance(expected, (list, tf.RaggedTensor)):
        rows = expected.to_list() if isinstance(expected, tf.RaggedTensor) else expected
        assert len(actual) == len(rows), where
        for index, (actual_row, row) in enumerate(zip(actual, rows)):
            row = np.asarray(row, np.asarray(actual_row).dtype)
            if row.size == 0:  # to_list() forgets the trailing shape of an empty row.
                row = row.reshape(0, *np.shape(actual_row)[1:])
            _assert_same(actual_row, row, f"{where}[{index}]")
    else:
        assert np.shape(actual) == np.shape(expected), where
        np.testing.assert_array_equal(actual, expected, err_msg=where)
        if check_dtype:
            assert np.asarray(actual).dtype == np.asarray(expected).dtype, where


def _features(record: bytes):
    return tf.train.Example.FromString(record).features.feature


def _shard_bytes(path, split: str) -> int:
    return sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path) if f"-{split}." in name)


def test_converting_every_field_keeps_the_records_byte_for_byte(tfrecord_dir, converted_dir):
    for split in synthetic_movi.SPLITS:
        assert _array_records(converted_dir, split) == _tfrecord_records(tfrecord_dir, split)


def test_converting_gives_the_records_of_preparing_as_array_record(converted_dir, tmp_path):
    synthetic_movi.prepare(TINY, tmp_path, file_format="array_record", num_shards=2)
    for split in synthetic_movi.SPLITS:
        assert _array_records(converted_dir, split) == _array_records(tmp_path, split)


def test_converting_every_field_keeps_the_metadata_but_file_format_and_sizes(tfrecord_dir, converted_dir):
    with open(os.path.join(_dataset_path(tfrecord_dir), "dataset_info.json")) as file:
        source = json.load(file)
    with open(os.path.join(_dataset_path(converted_dir), "dataset_info.json")) as file:
        converted = json.load(file)
    assert (source.pop("fileFormat"), converted.pop("fileFormat")) == ("tfrecord", "array_record")
    converted.pop("redistributionInfo", None)  # An empty field tfds adds when it rewrites the info.
    # numBytes is the size of the split's files, which are array_record now.
    for split in converted["splits"]:
        assert int(split.pop("numBytes")) == _shard_bytes(_dataset_path(converted_dir), split["name"])
    for split in source["splits"]:
        split.pop("numBytes")
    assert converted == source
    for name in ("features.json", "instances-shape.labels.txt"):
        with open(os.path.join(_dataset_path(converted_dir), name)) as file:
            with open(os.path.join(_dataset_path(tfrecord_dir), name)) as original:
                assert file.read() == original.read()


def test_data_source_decodes_every_field_as_tfds_does_and_as_rendered(tfrecord_dir, converted_dir):
    source = movi.data_source(NAME, "train", converted_dir, fields=None, prepare_if_missing=False)
    builder = tfds.builder_from_directory(_dataset_path(tfrecord_dir))
    via_tensorflow = list(tfds.as_numpy(builder.as_dataset(split="train")))
    spec = synthetic_movi.make_config(TINY).scene_spec()
    rendered = [synthetic.generate_video(spec, seed) for seed in synthetic_movi.split_seeds("train", 3)]
    assert len(source) == len(via_tensorflow) == 3
    for index in range(3):
        _assert_same(source[index], via_tensorflow[index], check_dtype=True)
        _assert_same(source[index], rendered[index])


def test_data_source_decodes_only_the_chosen_fields(converted_dir):
    default = movi.data_source(NAME, "validation", converted_dir, prepare_if_missing=False)[0]
    assert set(default) == {"video", "segmentations"}
    assert (default["video"].shape, default["video"].dtype) == ((3, 16, 16, 3), np.uint8)
    assert (default["segmentations"].shape, default["segmentations"].dtype) == ((3, 16, 16, 1), np.uint8)
    fields = ("depth", "metadata/depth_range", "instances/bbox_frames")
    source = movi.data_source(NAME, "validation", converted_dir, fields=fields, prepare_if_missing=False)
    chosen = source[0]
    assert set(chosen) == {"depth", "metadata", "instances"}
    assert set(chosen["metadata"]) == {"depth_range"} and set(chosen["instances"]) == {"bbox_frames"}
    assert (chosen["depth"].shape, chosen["depth"].dtype) == ((3, 16, 16, 1), np.uint16)


def test_interrupted_conversion_is_not_complete_and_resumes_skipping_finished_shards(
    tfrecord_dir, tmp_path
):
    path = movi_convert.convert(NAME, tfrecord_dir, tmp_path)
    expected = _array_records(tmp_path, "train")
    # The state an interruption inside train's second shard leaves: a partial temporary shard and
    # no dataset_info.json (it is written last).
    interrupted = path / "synthetic_movi-train.array_record-00001-of-00002"
    written = interrupted.read_bytes()
    (path / f"incomplete.{interrupted.name}").write_bytes(written[: len(written) // 2])
    interrupted.unlink()
    (path / "dataset_info.json").unlink()
    with pytest.raises(movi.DatasetNotFoundError):
        movi.data_source(NAME, "train", tmp_path, prepare_if_missing=False)
    finished = {p.name: os.stat(p).st_mtime_ns for p in path.glob("synthetic_movi-*.array_record-*")}

    movi_convert.convert(NAME, tfrecord_dir, tmp_path)
    assert {name: os.stat(path / name).st_mtime_ns for name in finished} == finished
    assert interrupted.exists() and not list(path.glob("incomplete.*"))
    assert _array_records(tmp_path, "train") == expected


def test_converting_some_splits_publishes_only_those(tfrecord_dir, tmp_path):
    movi_convert.convert(NAME, tfrecord_dir, tmp_path, splits=["validation"])
    assert set(tfds.builder_from_directory(_dataset_path(tmp_path)).info.splits) == {"validation"}
    movi_convert.convert(NAME, tfrecord_dir, tmp_path, splits=["train", "test"])
    splits = tfds.builder_from_directory(_dataset_path(tmp_path)).info.splits
    assert set(splits) == set(synthetic_movi.SPLITS)


def test_unregistered_dataset_like_real_movi_converts_and_reads(tfrecord_dir, converted_dir, tmp_path):
    # Kubric's MOVi has no builder code here: TFDS reads it from its metadata alone.
    name = "movi_z/16x16:1.0.0"
    target = _dataset_path(tmp_path / "tfrecord", name)
    shutil.copytree(_dataset_path(tfrecord_dir), target)
    for file_name in os.listdir(target):
        renamed = file_name.replace("synthetic_movi-", "movi_z-")
        os.rename(os.path.join(target, file_name), os.path.join(target, renamed))
    with open(os.path.join(target, "dataset_info.json")) as file:
        info = json.load(file)
    info.update(name="movi_z", configName="16x16", moduleName="")
    with open(os.path.join(target, "dataset_info.json"), "w") as file:
        json.dump(info, file)

    movi_convert.convert(name, tmp_path / "tfrecord", tmp_path / "array_record")
    source = movi.data_source(name, "train", tmp_path / "array_record", fields=None)
    by_tfds = tfds.builder(name, data_dir=tmp_path / "array_record").as_data_source("train")
    kept = ["video", "segmentations", *(key for key in sorted(DEFAULT_KEYS) if key.startswith("metadata/"))]
    reference = movi.data_source(NAME, "train", converted_dir, fields=kept, prepare_if_missing=False)
    assert len(source) == len(by_tfds) == len(reference) == 3
    for index in range(len(reference)):
        _assert_same(source[index], reference[index], check_dtype=True)
        _assert_same(reference[index], by_tfds[index])  # tfds gives text as bytes.


def test_default_conversion_keeps_video_segmentations_and_metadata_but_the_ranges(tfrecord_dir, default_dir):
    for split in synthetic_movi.SPLITS:
        converted = _array_records(default_dir, split)
        source = _tfrecord_records(tfrecord_dir, split)
        assert len(converted) == len(source)
        for record, original in zip(converted, source):
            entries, original_entries = _features(record), _features(original)
            assert set(entries) == DEFAULT_KEYS
            for key in DEFAULT_KEYS:
                assert entries[key] == original_entries[key], key


def test_requested_fields_bring_their_range_and_leave_the_rest_out(tfrecord_dir, converted_dir, tmp_path):
    movi_convert.convert(NAME, tfrecord_dir, tmp_path, fields=("depth", "instances"))
    source = _tfrecord_records(tfrecord_dir, "train")
    instance_keys = {key for key in _features(source[0]) if key.startswith("instances/")}
    metadata_keys = {key for key in DEFAULT_KEYS if key.startswith("metadata/")}
    for record, original in zip(_array_records(tmp_path, "train"), source):
        entries = _features(record)
        assert set(entries) == {"depth", "metadata/depth_range"} | instance_keys | metadata_keys
        assert all(entries[key] == _features(original)[key] for key in entries)

    fields = ("depth", "metadata/depth_range", "instances/bboxes", "instances/shape")
    kept = movi.data_source(NAME, "train", tmp_path, fields=fields, prepare_if_missing=False)
    every = movi.data_source(NAME, "train", converted_dir, fields=fields, prepare_if_missing=False)
    for index in range(len(every)):
        _assert_same(kept[index], every[index], check_dtype=True)
    with pytest.raises(movi.FieldsNotConvertedError, match=r"\['video'\]"):
        movi.data_source(NAME, "train", tmp_path, fields=("video",), prepare_if_missing=False)


def test_converted_metadata_describes_only_the_kept_features(default_dir, converted_dir):
    path = _dataset_path(default_dir)
    with open(os.path.join(path, "features.json")) as file:
        features = json.load(file)["featuresDict"]["features"]
    assert set(features) == {"metadata", "segmentations", "video"}
    metadata = set(features["metadata"]["featuresDict"]["features"])
    assert metadata == {"height", "num_frames", "num_instances", "video_name", "width"}
    assert not os.path.exists(os.path.join(path, "instances-shape.labels.txt"))
    with open(os.path.join(path, "dataset_info.json")) as file:
        info = json.load(file)
    assert info["fileFormat"] == "array_record"
    assert {split["name"]: int(split["numBytes"]) for split in info["splits"]} == {
        split: _shard_bytes(path, split) for split in synthetic_movi.SPLITS
    }
    # TFDS alone reads it, from that metadata.
    by_tfds = tfds.builder_from_directory(path).as_data_source("validation")
    reference = movi.data_source(NAME, "validation", converted_dir, fields=None, prepare_if_missing=False)
    assert set(by_tfds[0]) == {"metadata", "segmentations", "video"}
    np.testing.assert_array_equal(by_tfds[1]["video"], reference[1]["video"])
    np.testing.assert_array_equal(by_tfds[1]["segmentations"], reference[1]["segmentations"])


def test_reading_a_field_not_converted_names_it_and_the_conversion_flag(default_dir):
    with pytest.raises(movi.DatasetNotFoundError) as error:
        movi.data_source(
            NAME, "train", default_dir, fields=pipeline.source_fields(("video", "depth")), prepare_if_missing=False
        )
    assert isinstance(error.value, movi.FieldsNotConvertedError)
    message = str(error.value)
    assert "has no field(s) ['depth', 'metadata/depth_range']" in message
    assert "it holds segmentations,video" in message
    assert f"python -m ssync_jax.data.movi_convert --name {NAME}" in message
    assert message.endswith("--fields=segmentations,video,depth")


def test_converting_other_fields_into_a_conversion_is_refused_and_the_same_resumes(tfrecord_dir, tmp_path):
    path = movi_convert.convert(NAME, tfrecord_dir, tmp_path, splits=["validation"])
    written = {name: os.stat(path / name).st_mtime_ns for name in os.listdir(path)}
    with pytest.raises(ValueError, match="holds a conversion with --fields=segmentations,video; converting"):
        movi_convert.convert(NAME, tfrecord_dir, tmp_path, fields=("video", "segmentations", "depth"))
    assert {name: os.stat(path / name).st_mtime_ns for name in os.listdir(path)} == written
    movi_convert.convert(NAME, tfrecord_dir, tmp_path, splits=["test"], fields=("segmentations", "video"))
    assert set(tfds.builder_from_directory(os.fspath(path)).info.splits) == {"validation", "test"}


def test_directory_with_files_but_no_record_of_fields_is_refused(tfrecord_dir, tmp_path):
    # What a conversion by the earlier code, which kept every field, leaves.
    path = tmp_path / TINY.join(("synthetic_movi/", "/1.0.0"))
    path.mkdir(parents=True)
    (path / "synthetic_movi-train.array_record-00000-of-00002").write_bytes(b"")
    with pytest.raises(ValueError, match="holds files but no converted_fields.json"):
        movi_convert.convert(NAME, tfrecord_dir, tmp_path)


def test_unknown_field_is_refused_naming_the_flag_and_the_choices(tfrecord_dir, tmp_path):
    choices = "background,backward_flow,camera,depth,forward_flow,instances,segmentations,video"
    message = rf"--fields=video,dept must name .*: {choices} \(or all\); unknown: \['dept'\]"
    with pytest.raises(ValueError, match=message):
        movi_convert.convert(NAME, tfrecord_dir, tmp_path, fields=("video", "dept"))
    with pytest.raises(ValueError, match=r"unknown: \['metadata'\]\. metadata is always kept"):
        movi_convert.convert(NAME, tfrecord_dir, tmp_path, fields=("metadata",))
    assert not os.listdir(tmp_path)


def test_missing_movi_error_names_dataset_directory_and_both_ways_out(tmp_path):
    with pytest.raises(movi.DatasetNotFoundError) as error:
        movi.data_source("movi_c/128x128:1.0.0", "train", tmp_path)
    message = str(error.value)
    assert f"MOVi-C (movi_c/128x128:1.0.0) not found under {tmp_path}" in message
    assert (
        "python -m ssync_jax.data.movi_convert --name movi_c/128x128:1.0.0 "
        f"--data_dir gs://kubric-public/tfds --out_dir {tmp_path}"
    ) in message
    assert "--config.data.name=synthetic_movi/c_64x64" in message


def test_tfrecord_data_is_refused_with_the_conversion_command(tfrecord_dir):
    with pytest.raises(ValueError, match=f"convert --name {NAME} --data_dir {tfrecord_dir}"):
        movi.data_source(NAME, "train", tfrecord_dir)


def test_missing_synthetic_data_without_preparing_says_how_to_generate(tmp_path):
    command = f"python -m ssync_jax.data.synthetic_movi --config {TINY} --data_dir {tmp_path}"
    with pytest.raises(movi.DatasetNotFoundError, match=command):
        movi.data_source(NAME, "train", tmp_path, prepare_if_missing=False)
