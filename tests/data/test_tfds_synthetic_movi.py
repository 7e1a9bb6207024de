"""The `synthetic_movi` TFDS builder: config names, split seeds, preparation and its guards."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from ssync_jax.data import synthetic
from ssync_jax.data import synthetic_movi

# 16x16, 3 frames, 2 / 1 / 1 videos: a few seconds to prepare.
TINY = "c_16x16_3frames_train2_validation1_test1"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tfds")
    synthetic_movi.prepare(TINY, directory, file_format="tfrecord")
    return directory


@pytest.fixture(scope="module")
def stored_videos(data_dir) -> dict[str, list[np.ndarray]]:
    """The prepared videos of each split, read back through TFDS, in example order."""
    builder = synthetic_movi.load_builder(TINY, data_dir)
    return {
        split: [example["video"] for example in tfds.as_numpy(builder.as_dataset(split=split))]
        for split in synthetic_movi.SPLITS
    }


def test_registered_configs_match_movi_c_and_movi_e():
    c64, c128, e128 = (synthetic_movi.make_config(name) for name in synthetic_movi.REGISTERED_CONFIGS)
    assert (c64.height, c64.width, c128.height, e128.width) == (64, 64, 128, 128)
    c_spec, e_spec = c128.scene_spec(), e128.scene_spec()
    assert (c_spec.min_objects, c_spec.max_objects, c_spec.camera_motion) == (3, 10, "static")
    assert (e_spec.min_objects, e_spec.max_objects, e_spec.camera_motion) == (11, 23, "linear")
    assert e_spec.num_frames == 24


def test_variant_a_is_movi_a_like_plain_colours_with_two_to_five_larger_objects():
    spec = synthetic_movi.make_config("a_16x16_3frames").scene_spec()
    movi_c = synthetic_movi.make_config("c_16x16_3frames").scene_spec()
    assert (spec.texture, spec.camera_motion, movi_c.texture) == ("plain", "static", "checker")
    assert spec.object_scale[0] > movi_c.object_scale[0] and spec.object_scale[1] > movi_c.object_scale[1]
    counts = [
        synthetic.generate_video(spec, seed)["metadata"]["num_instances"]
        for seed in synthetic_movi.split_seeds("train", 40)
    ]
    assert min(counts) == 2 and max(counts) == 5
    assert "2-5 objects, plain colours" in synthetic_movi.make_config("a_32x32").description


def test_config_name_carries_every_size_that_differs_from_the_default():
    default = synthetic_movi.DEFAULT_SPLIT_SIZES
    assert synthetic_movi.make_config(f"c_64x64_train{default['train']}").name == "c_64x64"
    config = synthetic_movi.make_config("c_64x64", train_size=10000, test_size=7)
    assert config.name == "c_64x64_train10000_test7"
    assert config.split_sizes() == {"train": 10000, "validation": default["validation"], "test": 7}
    assert "train 10000 videos" in config.description
    assert synthetic_movi.make_config("e_32x48_5frames").scene_spec().num_frames == 5


@pytest.mark.parametrize("name", ["c_64", "x_64x64", "c_64x64_train0", "c_64x64_extra"])
def test_malformed_config_name_is_rejected_with_the_grammar(name):
    with pytest.raises(ValueError, match=r"c_64x64|\[1, "):
        synthetic_movi.make_config(name)


def test_split_seeds_are_disjoint_ranges_in_example_order():
    assert list(synthetic_movi.split_seeds("validation", 3)) == [10**9, 10**9 + 1, 10**9 + 2]
    largest = synthetic_movi.SEED_STRIDE - 1  # The largest allowed split size.
    train, validation, test = (synthetic_movi.split_seeds(s, largest) for s in synthetic_movi.SPLITS)
    assert train[0] == 0 and train[-1] < validation[0] and validation[-1] < test[0]


def test_examples_are_the_renderer_output_of_their_split_seeds(stored_videos):
    config = synthetic_movi.make_config(TINY)
    for split, size in {"train": 2, "validation": 1, "test": 1}.items():
        seeds = synthetic_movi.split_seeds(split, size)
        expected = [synthetic.generate_video(config.scene_spec(), seed)["video"] for seed in seeds]
        assert len(stored_videos[split]) == size
        for stored, rendered in zip(stored_videos[split], expected):
            np.testing.assert_array_equal(stored, rendered)


def test_train_validation_and_test_hold_different_videos(stored_videos):
    videos = [video for split in synthetic_movi.SPLITS for video in stored_videos[split]]
    assert len(videos) == 4
    for i in range(len(videos)):
        for j in range(i):
            assert not np.array_equal(videos[i], videos[j])


def test_preparing_again_reuses_the_prepared_files(data_dir):
    builder = synthetic_movi.load_builder(TINY, data_dir)
    before = {path.name: os.stat(path).st_mtime_ns for path in builder.data_path.iterdir()}
    synthetic_movi.prepare(TINY, data_dir, file_format="tfrecord")
    assert {path.name: os.stat(path).st_mtime_ns for path in builder.data_path.iterdir()} == before


def test_other_sizes_get_another_directory(data_dir):
    other = synthetic_movi.load_builder(TINY.replace("train2", "train5"), data_dir)
    assert other.data_path != synthetic_movi.load_builder(TINY, data_dir).data_path
    assert not other.is_prepared()


def test_data_with_other_sizes_under_a_config_name_is_refused(data_dir, tmp_path):
    prepared = synthetic_movi.load_builder(TINY, data_dir)
    impostor = synthetic_movi.load_builder(TINY.replace("train2", "train5"), tmp_path)
    impostor.data_path.parent.mkdir(parents=True)
    shutil.copytree(prepared.data_path, impostor.data_path)
    with pytest.raises(ValueError, match=r"'train': 2.*'train': 5"):
        synthetic_movi.prepare(TINY.replace("train2", "train5"), tmp_path, file_format="tfrecord")


def test_interrupted_generation_leaves_nothing_that_looks_prepared(tmp_path, monkeypatch):
    real_generate = synthetic.generate_video

    def fail_on_second_validation_video(spec, seed):
        if seed == synthetic_movi.SEED_STRIDE + 1:
            raise KeyboardInterrupt
        return real_generate(spec, seed)

    name = "c_16x16_3frames_train1_validation2_test1"
    monkeypatch.setattr(synthetic, "generate_video", fail_on_second_validation_video)
    with pytest.raises(KeyboardInterrupt):
        synthetic_movi.prepare(name, tmp_path, file_format="tfrecord")
    builder = synthetic_movi.load_builder(name, tmp_path)
    assert not builder.is_prepared()
    assert not list(tmp_path.rglob("dataset_info.json"))

    monkeypatch.setattr(synthetic, "generate_video", real_generate)
    builder = synthetic_movi.prepare(name, tmp_path, file_format="tfrecord")
    assert builder.info.splits["validation"].num_examples == 2


def test_a_process_that_finishes_second_uses_the_first_ones_copy(tmp_path, monkeypatch):
    """Two runs started at once on fresh data both prepare it; the one that finishes second goes on."""
    name = "c_16x16_3frames_train1_validation1_test1"
    real_generate = synthetic.generate_video
    other_finished = []

    def let_another_process_finish_first(spec, seed):
        if not other_finished:  # A real second process prepares the same data while this one is midway.
            script = "import sys; from ssync_jax.data import synthetic_movi; synthetic_movi.prepare(*sys.argv[1:3], file_format='tfrecord')"  # fmt: skip
            subprocess.run([sys.executable, "-c", script, name, str(tmp_path)], check=True)
            other_finished.append(True)
        return real_generate(spec, seed)

    monkeypatch.setattr(synthetic, "generate_video", let_another_process_finish_first)
    builder = synthetic_movi.prepare(name, tmp_path, file_format="tfrecord")
    assert other_finished
    assert builder.is_prepared()
    assert [path.name for path in builder.data_path.parent.iterdir()] == [builder.data_path.name]  # No incomplete copy.
    stored = [example["video"] for example in tfds.as_numpy(builder.as_dataset(split="test"))]
    (seed,) = synthetic_movi.split_seeds("test", 1)
    np.testing.assert_array_equal(stored[0], real_generate(builder.builder_config.scene_spec(), seed)["video"])
