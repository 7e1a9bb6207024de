"""The per-field byte counts of `benchmarks/tfds_synthetic_movi.py --mode=sizes`, against protobuf
encoding sizes worked out by hand."""

import pytest
import tensorflow as tf

from benchmarks import tfds_synthetic_movi as sizes


def _record(**entries: tf.train.Feature) -> bytes:
    features = {key.replace("__", "/"): value for key, value in entries.items()}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _bytes(size: int) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x" * size]))


@pytest.mark.parametrize(
    "key, field",
    [
        ("video", "video"),
        ("instances/bboxes/ragged_flat_values", "instances"),
        ("metadata/depth_range", "depth"),
        ("metadata/backward_flow_range", "backward_flow"),
        ("metadata/num_frames", "metadata"),
    ],
)
def test_each_key_belongs_to_the_field_convert_keeps_it_with(key, field):
    assert sizes.field_of_key(key) == field


def test_field_bytes_are_the_encoded_sizes_of_their_entries():
    record = _record(
        video=_bytes(100),
        depth=_bytes(10),
        metadata__depth_range=tf.train.Feature(float_list=tf.train.FloatList(value=[0.0, 1.0])),
        metadata__num_frames=tf.train.Feature(int64_list=tf.train.Int64List(value=[24])),
    )
    # Each map entry: tag + length + (key: tag + length + name) + (value: tag + length + Feature), where
    # Feature = tag + length + (list: tag + length + payload). Floats are packed 4 bytes each.
    video = 2 + (2 + 5) + (2 + (2 + (2 + 100)))
    depth = 2 + (2 + 5) + (2 + (2 + (2 + 10)))
    depth_range = 2 + (2 + 20) + (2 + (2 + (2 + 8)))
    num_frames = 2 + (2 + 19) + (2 + (2 + (2 + 1)))
    assert (video, depth, depth_range, num_frames) == (115, 25, 38, 30)
    assert sizes.field_bytes(record) == {"video": video, "depth": depth + depth_range, "metadata": num_frames}
    # The Example adds its tag and the 2-byte length of its 208-byte Features.
    assert len(record) == 208 + 3


def test_mean_field_bytes_counts_a_missing_field_as_zero_and_sorts_largest_first():
    records = [_record(video=_bytes(100), depth=_bytes(10)), _record(video=_bytes(50))]
    assert list(sizes.mean_field_bytes(records).items()) == [("video", (115 + 65) / 2), ("depth", 25 / 2)]


def test_size_table_marks_the_default_fields_and_ends_with_the_totals():
    table = sizes.size_table({"depth": 2048.0, "video": 1024.0, "metadata": 10.0}, 1040.0, 65536.0).splitlines()
    assert table[0].split() == ["field", "bytes/video", "KiB/video", "kept", "by", "default"]
    assert [line.split() for line in table[1:4]] == [
        ["depth", "2,048", "2.0"], ["video", "1,024", "1.0", "yes"], ["metadata", "10", "0.0", "yes"]
    ]
    assert table[4].split() == ["all", "fields", "3,082", "3.0"]
    assert table[5].split()[:4] == ["default,", "records", "1,040", "1.0"]
    assert table[6].split()[:4] == ["default,", "files", "65,536", "64.0"]
