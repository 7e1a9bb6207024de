"""The command lines of `synthetic_movi` (prepare) and `movi` (convert), run as users run them: the
options they document work, and a mistake ends in one short line naming the option, no traceback."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = "c_16x16_2frames_train2_validation1_test1"
NAME = f"synthetic_movi/{TINY}:1.0.0"


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m module args...` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )


def _assert_short_error(result: subprocess.CompletedProcess, option: str) -> None:
    """A failed run whose error is one line (absl's for flags, ours after) naming `option`."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [
        line for line in result.stderr.splitlines() if line.startswith(("FATAL Flags parsing error:", "Error:"))
    ]
    assert len(errors) == 1 and option in errors[0], result.stderr[-3000:]


@pytest.fixture(scope="module")
def tfrecord_dir(tmp_path_factory):
    """A tiny tfrecord dataset, prepared through the synthetic_movi command line."""
    directory = tmp_path_factory.mktemp("tfrecord")
    result = _run(
        "ssync_jax.data.synthetic_movi",
        "--config", "c_16x16_2frames", "--train_size", "2", "--validation_size=1", "--test_size=1",
        "--data_dir", str(directory), "--file_format=tfrecord",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"synthetic_movi/{TINY} (" in result.stderr.splitlines()[-1]
    return directory


def test_synthetic_movi_cli_prepares_the_config_and_sizes_given(tfrecord_dir):
    info = tfds.builder_from_directory(os.path.join(tfrecord_dir, NAME.replace(":", "/"))).info
    assert info.file_format.value == "tfrecord"
    assert {split: info.splits[split].num_examples for split in info.splits} == {
        "train": 2, "validation": 1, "test": 1
    }


@pytest.mark.parametrize(
    "args, option",
    [
        (["--config=c_64"], "--config"),
        (["--train_size=0"], "--train_size"),
        (["--file_format=zip"], "--file_format"),
    ],
)
def test_synthetic_movi_cli_mistakes_name_the_option(args, option, tmp_path):
    result = _run("ssync_jax.data.synthetic_movi", "--data_dir", str(tmp_path), *args)
    _assert_short_error(result, option)
    assert not os.listdir(tmp_path)


def test_movi_cli_converts_the_fields_and_splits_given(tfrecord_dir, tmp_path):
    result = _run(
        "ssync_jax.data.movi_convert", "--name", NAME, "--data_dir", str(tfrecord_dir),
        "--out_dir", str(tmp_path), "--fields=video,segmentations,depth", "--splits=validation,test",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    builder = tfds.builder_from_directory(os.path.join(tmp_path, NAME.replace(":", "/")))
    assert set(builder.info.splits) == {"validation", "test"}
    record = builder.as_data_source("test", deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)[0]
    keys = set(tf.train.Example.FromString(record).features.feature)
    metadata = {f"metadata/{key}" for key in ("video_name", "width", "height", "num_frames", "num_instances")}
    assert keys == {"video", "segmentations", "depth", "metadata/depth_range"} | metadata


@pytest.mark.parametrize(
    "args, option",
    [
        (["--out_dir=OUT"], "--name"),
        (["--name", NAME, "--out_dir=OUT", "--fields=video,dept"], "--fields=video,dept"),
        (["--name", NAME, "--out_dir=OUT", "--fields=all,video"], "--fields=all,video"),
    ],
)
def test_movi_cli_mistakes_name_the_option(args, option, tfrecord_dir, tmp_path):
    args = [arg.replace("OUT", str(tmp_path)) for arg in args]
    result = _run("ssync_jax.data.movi_convert", "--data_dir", str(tfrecord_dir), *args)
    _assert_short_error(result, option)
    assert not os.listdir(tmp_path)
