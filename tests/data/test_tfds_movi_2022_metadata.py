"""`convert` on metadata as Kubric's bucket holds it: written by 2022-era TFDS (4.5-4.6).

The dataset here is made by hand, without TFDS: `features.json` in that era's proto-JSON style
(no tensor `encoding`, no `bboxFormat`), a `dataset_info.json` without `fileFormat`,
`filepathTemplate` or `moduleName` but with a feature `schema` and split `statistics`, one label
file, and tfrecord shards of `tf.train.Example`s whose PNG frames PIL encodes. It has MOVi's
structure, small: 2 frames of 4x6, 2 instances. The decoded examples must be the arrays the
records were made from.
"""

import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from ssync_jax.data import movi, movi_convert

NAME = "movi_t/4x6:1.0.0"
FRAMES, HEIGHT, WIDTH = 2, 4, 6
SPLITS = {"train": 2, "validation": 1}
_FEATURES = "tensorflow_datasets.core.features."


def _feature(class_name: str, **content) -> dict:
    return {"pythonClassName": f"{_FEATURES}{class_name}", **content}


def _tensor(dtype: str, *shape: int) -> dict:
    return _feature("tensor_feature.Tensor", tensor={"shape": _shape(shape), "dtype": dtype})


def _shape(shape) -> dict:
    return {"dimensions": [str(dim) for dim in shape]} if shape else {}


def _dict(**features) -> dict:
    return _feature("features_dict.FeaturesDict", featuresDict={"features": features})


def _sequence(feature: dict, length: int = -1) -> dict:
    return _feature("sequence_feature.Sequence", sequence={"feature": feature, "length": str(length)})


def _image(dtype: str) -> dict:
    return _feature("image_feature.Image", image={"shape": _shape((HEIGHT, WIDTH, 1)), "dtype": dtype})


FEATURES_JSON = _dict(
    metadata=_dict(
        video_name=_feature("text_feature.Text", text={}),
        width=_tensor("int32"),
        height=_tensor("int32"),
        num_frames=_tensor("int32"),
        num_instances=_tensor("uint16"),
        depth_range=_tensor("float32", 2),
        forward_flow_range=_tensor("float32", 2),
        backward_flow_range=_tensor("float32", 2),
    ),
    instances=_sequence(
        _dict(
            category=_feature("class_label_feature.ClassLabel", classLabel={"numClasses": "2"}),
            positions=_tensor("float32", FRAMES, 3),
            bboxes=_sequence(
                _feature("bounding_boxes.BBoxFeature", boundingBox={"shape": _shape((4,)), "dtype": "float32"})
            ),
            bbox_frames=_sequence(_tensor("int32")),
            visibility=_tensor("uint16", FRAMES),
        )
    ),
    camera=_dict(positions=_tensor("float32", FRAMES, 3)),
    video=_feature(
        "video_feature.Video",
        video={"shape": _shape((FRAMES, HEIGHT, WIDTH, 3)), "dtype": "uint8", "encodingFormat": "png"},
    ),
    segmentations=_sequence(_image("uint8"), FRAMES),
    depth=_sequence(_image("uint16"), FRAMES),
    forward_flow=_sequence(_tensor("uint16", HEIGHT, WIDTH, 2), FRAMES),
    backward_flow=_sequence(_tensor("uint16", HEIGHT, WIDTH, 2), FRAMES),
)


def _statistics(count: int) -> dict:
    return {
        "numExamples": str(count),
        "features": [
            {"name": "video", "type": "STRING"},
            {"name": "depth", "type": "STRING"},
            {"path": {"step": ["metadata", "num_frames"]}, "type": "INT"},
            {"path": {"step": ["metadata", "depth_range"]}, "type": "FLOAT"},
        ],
    }


DATASET_INFO_JSON = {
    "name": "movi_t",
    "configName": "4x6",
    "configDescription": "4x6 videos of 2 frames",
    "description": "A tiny stand-in for Kubric's MOVi, metadata as TFDS wrote it in 2022.",
    "citation": "@inproceedings{greff2021kubric, title={Kubric}}",
    "downloadSize": "0",
    "location": {"urls": ["https://github.com/google-research/kubric"]},
    "releaseNotes": {"1.0.0": "initial release"},
    "version": "1.0.0",
    "schema": {
        "feature": [
            {"name": "video", "type": "BYTES"},
            {"name": "instances/positions", "type": "FLOAT"},
            {"name": "metadata/num_frames", "type": "INT"},
            {"name": "metadata/backward_flow_range", "type": "FLOAT"},
        ]
    },
    "splits": [
        {"name": split, "numBytes": "123456", "shardLengths": [str(count)], "statistics": _statistics(count)}
        for split, count in SPLITS.items()
    ],
}


def _video(seed: int) -> dict:
    """One example's arrays, as the data interface decodes them."""
    rng = np.random.default_rng(seed)
    lengths = [2, 1]  # Boxes per instance: the frames where it is visible.
    return {
        "metadata": {
            "video_name": f"movi_t_{seed}",
            "width": np.int32(WIDTH),
            "height": np.int32(HEIGHT),
            "num_frames": np.int32(FRAMES),
            "num_instances": np.uint16(2),
            **{
                f"{name}_range": np.float32([-seed, seed + 1])
                for name in ("depth", "forward_flow", "backward_flow")
            },
        },
        "instances": {
            "category": np.int64([1, 0]),
            "positions": rng.normal(size=(2, FRAMES, 3)).astype(np.float32),
            "bboxes": [rng.uniform(size=(length, 4)).astype(np.float32) for length in lengths],
            "bbox_frames": [np.int32([0, 1]), np.int32([1])],
            "visibility": np.uint16([[5, 7], [0, 3]]),
        },
        "camera": {"positions": rng.normal(size=(FRAMES, 3)).astype(np.float32)},
        "video": rng.integers(0, 256, (FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8),
        "segmentations": rng.integers(0, 3, (FRAMES, HEIGHT, WIDTH, 1), dtype=np.uint8),
        "depth": rng.integers(0, 2**16, (FRAMES, HEIGHT, WIDTH, 1), dtype=np.uint16),
        "forward_flow": rng.integers(0, 2**16, (FRAMES, HEIGHT, WIDTH, 2), dtype=np.uint16),
        "backward_flow": rng.integers(0, 2**16, (FRAMES, HEIGHT, WIDTH, 2), dtype=np.uint16),
    }


def _png(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame).save(buffer, format="PNG")
    return buffer.getvalue()


def _floats(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=np.ravel(values)))


def _ints(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=np.ravel(values)))


def _bytes(values: list[bytes]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _record(video: dict) -> bytes:
    """The tf.train.Example TFDS writes for `video`: nested keys joined by "/", frames as PNG,
    ragged rows as flat values plus row lengths."""
    metadata, instances = video["metadata"], video["instances"]
    entries = {
        "metadata/video_name": _bytes([metadata["video_name"].encode()]),
        "instances/category": _ints(instances["category"]),
        "instances/positions": _floats(instances["positions"]),
        "instances/visibility": _ints(instances["visibility"]),
        "camera/positions": _floats(video["camera"]["positions"]),
        "video": _bytes([_png(frame) for frame in video["video"]]),
        "segmentations": _bytes([_png(frame) for frame in video["segmentations"]]),
        "depth": _bytes([_png(frame) for frame in video["depth"]]),
        "forward_flow": _ints(video["forward_flow"]),
        "backward_flow": _ints(video["backward_flow"]),
    }
    for key in ("width", "height", "num_frames", "num_instances"):
        entries[f"metadata/{key}"] = _ints(metadata[key])
    for name in ("depth", "forward_flow", "backward_flow"):
        entries[f"metadata/{name}_range"] = _floats(metadata[f"{name}_range"])
    for key, to_feature in (("bboxes", _floats), ("bbox_frames", _ints)):
        rows = instances[key]
        entries[f"instances/{key}/ragged_flat_values"] = to_feature(np.concatenate([np.ravel(r) for r in rows]))
        entries[f"instances/{key}/ragged_row_lengths_0"] = _ints([len(row) for row in rows])
    return tf.train.Example(features=tf.train.Features(feature=entries)).SerializeToString()


def _videos(split: str) -> list[dict]:
    offset = 0 if split == "train" else 100
    return [_video(offset + index) for index in range(SPLITS[split])]


@pytest.fixture(scope="module")
def kubric_dir(tmp_path_factory):
    """A TFDS directory holding `movi_t/4x6/1.0.0` as 2022-era TFDS wrote MOVi."""
    root = tmp_path_factory.mktemp("kubric")
    path = root / "movi_t" / "4x6" / "1.0.0"
    path.mkdir(parents=True)
    (path / "features.json").write_text(json.dumps(FEATURES_JSON, indent=4))
    (path / "dataset_info.json").write_text(json.dumps(DATASET_INFO_JSON, indent=2))
    (path / "instances-category.labels.txt").write_text("metal\nrubber\n")
    for split in SPLITS:
        with tf.io.TFRecordWriter(os.fspath(path / f"movi_t-{split}.tfrecord-00000-of-00001")) as writer:
            for video in _videos(split):
                writer.write(_record(video))
    return root


def _assert_equal(actual, expected, where: str = "example") -> None:
    """Recursive equality with dtypes; lists are ragged rows."""
    if isinstance(expected, dict):
        assert set(actual) == set(expected), where
        for key in expected:
            _assert_equal(actual[key], expected[key], f"{where}/{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), where
        for index, (row, expected_row) in enumerate(zip(actual, expected)):
            _assert_equal(row, expected_row, f"{where}[{index}]")
    elif isinstance(expected, str):
        assert actual == expected, where
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=where)
        assert np.asarray(actual).dtype == expected.dtype, where


def _converted(out_dir) -> str:
    return os.path.join(out_dir, "movi_t", "4x6", "1.0.0")


def test_default_conversion_reads_back_through_tfds_and_data_source(kubric_dir, tmp_path):
    movi_convert.convert(NAME, kubric_dir, tmp_path)
    for split in SPLITS:
        expected = _videos(split)
        by_tfds = tfds.builder(NAME, data_dir=tmp_path).as_data_source(split)
        ours = movi.data_source(NAME, split, tmp_path)
        assert len(by_tfds) == len(ours) == len(expected)
        for index, video in enumerate(expected):
            _assert_equal(ours[index], {"video": video["video"], "segmentations": video["segmentations"]})
            assert by_tfds[index]["metadata"]["video_name"] == video["metadata"]["video_name"].encode()
            np.testing.assert_array_equal(by_tfds[index]["video"], video["video"])
            np.testing.assert_array_equal(by_tfds[index]["segmentations"], video["segmentations"])


def test_default_conversion_metadata_keeps_the_old_fields_but_the_dropped_features(kubric_dir, tmp_path):
    movi_convert.convert(NAME, kubric_dir, tmp_path)
    path = _converted(tmp_path)
    with open(os.path.join(path, "features.json")) as file:
        features = json.load(file)["featuresDict"]["features"]
    assert set(features) == {"metadata", "segmentations", "video"}
    assert set(features["metadata"]["featuresDict"]["features"]) == {
        "video_name", "width", "height", "num_frames", "num_instances"
    }
    assert not os.path.exists(os.path.join(path, "instances-category.labels.txt"))
    with open(os.path.join(path, "dataset_info.json")) as file:
        info = json.load(file)
    assert info["fileFormat"] == "array_record"
    assert (info["citation"], info["location"]) == (DATASET_INFO_JSON["citation"], DATASET_INFO_JSON["location"])
    assert [feature["name"] for feature in info["schema"]["feature"]] == ["video", "metadata/num_frames"]
    for split in info["splits"]:
        statistics = split["statistics"]
        assert statistics["numExamples"] == str(SPLITS[split["name"]])
        names = [feature.get("name") or "/".join(feature["path"]["step"]) for feature in statistics["features"]]
        assert names == ["video", "metadata/num_frames"]
        shard = os.path.join(path, f"movi_t-{split['name']}.array_record-00000-of-00001")
        assert int(split["numBytes"]) == os.path.getsize(shard)


def test_requested_fields_decode_to_the_arrays_written(kubric_dir, tmp_path):
    movi_convert.convert(NAME, kubric_dir, tmp_path, fields=("video", "depth", "forward_flow", "instances"))
    paths = (
        "video", "depth", "forward_flow", "metadata/depth_range", "metadata/forward_flow_range",
        "metadata/num_frames", "instances/category", "instances/positions", "instances/bboxes",
        "instances/bbox_frames", "instances/visibility",
    )
    source = movi.data_source(NAME, "train", tmp_path, fields=paths)
    for index, video in enumerate(_videos("train")):
        expected = {
            "video": video["video"],
            "depth": video["depth"],
            "forward_flow": video["forward_flow"],
            "metadata": {
                key: video["metadata"][key] for key in ("depth_range", "forward_flow_range", "num_frames")
            },
            "instances": {
                key: video["instances"][key]
                for key in ("category", "positions", "bboxes", "bbox_frames", "visibility")
            },
        }
        _assert_equal(source[index], expected)
    labels = os.path.join(_converted(tmp_path), "instances-category.labels.txt")
    with open(labels) as file:
        assert file.read().split() == ["metal", "rubber"]
    with pytest.raises(movi.FieldsNotConvertedError, match=r"--data_dir gs://kubric-public/tfds .*backward_flow$"):
        movi.data_source(NAME, "train", tmp_path, fields=("backward_flow", "metadata/backward_flow_range"))
