"""The grain input pipeline on in-memory sources of small hand-made videos."""

import contextlib
import itertools
import sys
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import ssync_jax.data
from ssync_jax.data import pipeline

# One process of one: tests inject the shard instead of asking jax.
SINGLE = dict(process_index=0, process_count=1)


def _frame_numbered_video(index: int, num_frames: int = 24, size: int = 4) -> dict:
    """Frame t of video `index` holds 10 * index + t everywhere, so a chunk names itself."""
    values = (10 * index + np.arange(num_frames)).astype(np.uint8)  # [S]
    video = np.broadcast_to(values[:, None, None, None], (num_frames, size, size, 3))
    return {"video": video.copy(), "segmentations": video[..., :1].copy()}


def _random_video(seed: int, num_frames: int = 2, size: int = 8) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "video": rng.integers(0, 256, (num_frames, size, size, 3), dtype=np.uint8),
        "segmentations": rng.choice([0, 2, 5], (num_frames, size, size, 1)).astype(np.uint8),
    }


def _take(dataset, count: int) -> list[dict]:
    with contextlib.closing(iter(dataset)) as iterator:
        return list(itertools.islice(iterator, count))


def _assert_same_batches(first: list[dict], second: list[dict]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def _train(source, **overrides):
    settings = dict(
        image_size=(4, 4), chunk_length=4, global_batch_size=2, seed=0,
        normalization="zero_one", flip_prob=0.0, **SINGLE,
    )
    return pipeline.train_dataset(source, **(settings | overrides))


def test_training_chunks_are_aligned_windows_and_every_window_occurs():
    source = [_frame_numbered_video(i) for i in range(2)]
    starts = set()
    for batch in _take(_train(source), 30):
        assert batch["video"].shape == (2, 4, 4, 4, 3) and batch["video"].dtype == np.float32
        assert batch["segmentations"].shape == (2, 4, 4, 4)
        assert batch["segmentations"].dtype == np.int32
        examples = zip(batch["video"], batch["segmentations"], batch["video_index"])
        for video, segmentations, index in examples:
            frames = np.round(video[:, 0, 0, 0] * 255).astype(int) - 10 * index  # [T]
            start = frames[0]
            assert start % 4 == 0 and list(frames) == [start, start + 1, start + 2, start + 3]
            np.testing.assert_array_equal(segmentations[:, 0, 0], 10 * index + frames)
            starts.add(start)
    assert starts == {0, 4, 8, 12, 16, 20}


def test_each_training_epoch_visits_every_video_once_in_a_new_order():
    source = [_frame_numbered_video(i, num_frames=4) for i in range(6)]
    batches = _take(_train(source, global_batch_size=1), 18)
    indices = [int(batch["video_index"][0]) for batch in batches]
    epochs = [indices[0:6], indices[6:12], indices[12:18]]
    assert all(sorted(epoch) == list(range(6)) for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) > 1


def test_training_video_is_bicubic_resized_clamped_and_normalized():
    source = [_random_video(seed) for seed in range(2)]
    dataset = _train(source, image_size=(12, 10), chunk_length=2, normalization="imagenet")
    batch = _take(dataset, 1)[0]
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    for video, index in zip(batch["video"], batch["video_index"]):
        video01 = jnp.asarray(source[index]["video"], jnp.float32) / 255.0
        resized = jax.image.resize(video01, (2, 12, 10, 3), "bicubic", antialias=True)
        expected = (np.clip(np.asarray(resized), 0.0, 1.0) - mean) / std
        # 2e-5 of float32 summation-order noise on [0, 1], magnified by 1 / std < 4.5.
        np.testing.assert_allclose(video, expected, atol=1e-4)
    assert batch["segmentations"].shape == (2, 2, 12, 10)
    assert set(np.unique(batch["segmentations"])) <= {0, 2, 5}


def _mirror_example() -> dict:
    """One frame, 2 x 3 pixels; every field varies along the columns so a flip is visible by eye."""
    video = np.zeros((1, 2, 3, 3), np.uint8)
    video[0, :, :, 0] = [[10, 20, 30], [40, 50, 60]]
    segmentations = np.array([[[[1], [2], [3]], [[4], [5], [6]]]], np.uint8)  # [1, 2, 3, 1]
    flow = np.zeros((1, 2, 3, 2), np.uint16)
    flow[..., 0] = 7  # d_row
    flow[..., 1] = [1, 2, 3]  # d_col
    depth = np.array([[[[100], [200], [300]], [[400], [500], [600]]]], np.uint16)
    return {
        "video": video,
        "segmentations": segmentations,
        "depth": depth,
        "forward_flow": flow,
        # A range of [0, 65535] makes decoding the identity, so the stored numbers are the flow.
        "metadata": {"forward_flow_range": np.array([0.0, 65535.0], np.float32),
                     "depth_range": np.array([0.0, 65535.0], np.float32)},
    }


def test_flip_mirrors_every_field_and_negates_flow_columns():
    fields = ("video", "segmentations", "depth", "forward_flow")
    batch = _take(
        _train([_mirror_example()], image_size=(2, 3), chunk_length=1, global_batch_size=1,
               flip_prob=1.0, fields=fields),
        1,
    )[0]
    red = batch["video"][0, 0, :, :, 0] * 255
    np.testing.assert_allclose(red, [[30, 20, 10], [60, 50, 40]], rtol=1e-6)
    np.testing.assert_array_equal(batch["segmentations"][0, 0], [[3, 2, 1], [6, 5, 4]])
    np.testing.assert_array_equal(batch["depth"][0, 0, :, :, 0], [[300, 200, 100], [600, 500, 400]])
    np.testing.assert_array_equal(batch["forward_flow"][0, 0, :, :, 0], [[7, 7, 7], [7, 7, 7]])
    np.testing.assert_array_equal(batch["forward_flow"][0, 0, :, :, 1], [[-3, -2, -1]] * 2)


def test_half_of_the_examples_flip_and_all_their_fields_flip_together():
    fields = ("video", "segmentations", "depth", "forward_flow")
    batches = _take(
        _train([_mirror_example()] * 4, image_size=(2, 3), chunk_length=1, global_batch_size=4,
               flip_prob=0.5, fields=fields),
        10,
    )
    flipped = []
    for batch in batches:
        for b in range(4):
            video_flipped = batch["video"][b, 0, 0, 0, 0] * 255 > 25  # 30 instead of 10 first.
            assert (batch["segmentations"][b, 0, 0, 0] == 3) == video_flipped
            assert (batch["depth"][b, 0, 0, 0, 0] == 300) == video_flipped
            assert (batch["forward_flow"][b, 0, 0, 0, 1] == -3) == video_flipped
            flipped.append(video_flipped)
    assert 10 <= sum(flipped) <= 30  # 40 fair coins.


def test_depth_and_flow_decode_with_the_videos_ranges():
    example = _mirror_example()
    example["metadata"] = {"depth_range": np.array([1.0, 3.0], np.float32),
                           "forward_flow_range": np.array([-2.0, 2.0], np.float32)}
    example["depth"] = np.full((1, 2, 3, 1), 65535, np.uint16)
    example["forward_flow"] = np.zeros((1, 2, 3, 2), np.uint16)
    batch = _take(
        _train([example], image_size=(2, 3), chunk_length=1, global_batch_size=1,
               fields=("video", "depth", "forward_flow")),
        1,
    )[0]
    np.testing.assert_allclose(batch["depth"], np.full((1, 1, 2, 3, 1), 3.0))
    np.testing.assert_allclose(batch["forward_flow"], np.full((1, 1, 2, 3, 2), -2.0))
    assert "segmentations" not in batch


def test_same_seed_repeats_batches_and_another_seed_does_not():
    source = [_frame_numbered_video(i) for i in range(4)]
    first = _take(_train(source, seed=5, flip_prob=0.5), 3)
    _assert_same_batches(first, _take(_train(source, seed=5, flip_prob=0.5), 3))
    other = _take(_train(source, seed=6, flip_prob=0.5), 3)
    assert any(not np.array_equal(a["video"], b["video"]) for a, b in zip(first, other))


def test_restored_iterator_yields_exactly_the_next_batches():
    dataset = _train([_frame_numbered_video(i) for i in range(3)], flip_prob=0.5)
    with contextlib.closing(iter(dataset)) as iterator:
        _ = [next(iterator) for _ in range(4)]
        state = iterator.get_state()
        expected = [next(iterator) for _ in range(5)]
    with contextlib.closing(iter(dataset)) as restored:
        restored.set_state(state)
        _assert_same_batches([next(restored) for _ in range(5)], expected)


def test_two_workers_yield_the_single_process_batches_and_resume_from_saved_state():
    source = [_frame_numbered_video(i) for i in range(3)]
    reference = _take(_train(source, flip_prob=0.5), 5)
    with_workers = _train(source, flip_prob=0.5, num_workers=2)
    with contextlib.closing(iter(with_workers)) as iterator:
        _assert_same_batches([next(iterator) for _ in range(2)], reference[:2])
        state = iterator.get_state()
    with contextlib.closing(iter(with_workers)) as restored:
        restored.set_state(state)
        _assert_same_batches([next(restored) for _ in range(3)], reference[2:])


def _eval(source, **overrides):
    settings = dict(image_size=(4, 4), global_batch_size=2, normalization="zero_one", **SINGLE)
    return pipeline.eval_dataset(source, **(settings | overrides))


def test_eval_pads_the_last_batch_and_visits_every_video_once():
    batches = list(_eval([_frame_numbered_video(i) for i in range(5)]))
    assert [b["valid"].tolist() for b in batches] == [[True, True], [True, True], [True, False]]
    indices = np.concatenate([b["video_index"][b["valid"]] for b in batches])
    assert sorted(indices.tolist()) == [0, 1, 2, 3, 4]
    assert batches[-1]["video_index"][1] == -1 and not batches[-1]["video"][1].any()


def test_eval_keeps_whole_videos_and_label_resolution_segmentations():
    source = [_random_video(seed, num_frames=3, size=8) for seed in range(2)]
    batch = next(iter(_eval(source, image_size=(4, 6))))
    assert batch["video"].shape == (2, 3, 4, 6, 3)
    for segmentations, index in zip(batch["segmentations"], batch["video_index"]):
        np.testing.assert_array_equal(segmentations, source[index]["segmentations"][..., 0])


def test_processes_read_disjoint_shards_that_cover_the_split():
    source = [_frame_numbered_video(i, num_frames=4) for i in range(5)]
    seen = []
    for process in range(2):
        batches = list(_eval(source, global_batch_size=4, process_index=process, process_count=2))
        assert len(batches) == 2  # Both processes take ceil(3 / 2) steps, in lockstep.
        seen.append({int(i) for b in batches for i in b["video_index"][b["valid"]]})
        shard = _train(source, global_batch_size=2, process_index=process, process_count=2)
        train = _take(shard, 6)
        assert {int(i) for b in train for i in b["video_index"]} == seen[-1]
    assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == {0, 1, 2, 3, 4}


def test_global_batch_not_divisible_by_processes_names_both_numbers():
    with pytest.raises(ValueError, match=r"batch size 3 .* 2 JAX processes"):
        _train([_frame_numbered_video(0)], global_batch_size=3, process_index=0, process_count=2)


@pytest.mark.parametrize(
    "overrides, message",
    [({"normalization": "unit"}, "normalization"), ({"fields": ("video", "normals")}, "fields")],
)
def test_bad_settings_name_the_config_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        _train([_frame_numbered_video(0)], **overrides)


def test_dataset_from_config_reads_the_configured_splits(monkeypatch):
    requested = []

    def data_source(name, split, data_dir, *, fields):
        requested.append((name, split, data_dir, fields))
        return [_random_video(seed, num_frames=4) for seed in range(3)]

    fake_movi = types.SimpleNamespace(data_source=data_source)
    monkeypatch.setitem(sys.modules, "ssync_jax.data.movi", fake_movi)
    monkeypatch.setattr(ssync_jax.data, "movi", fake_movi, raising=False)
    config = ml_collections.ConfigDict(dict(
        name="synthetic_movi/c_64x64", data_dir="/data",
        train_split="train", eval_split="validation",
        image_size=(6, 6), chunk_length=2, normalization="minus_one_one", flip_prob=0.5,
        fields=("video", "segmentations"), global_batch_size=2, eval_batch_size=2,
        num_workers=0, prefetch_buffer_size=1, bicubic="pil", eval_resolution="dataset", keep_decoded=True,
    ))
    train = _take(pipeline.dataset_from_config(config, train=True, seed=0, **SINGLE), 1)[0]
    evaluation = list(pipeline.dataset_from_config(config, train=False, seed=0, **SINGLE))
    fields = ("video", "segmentations")
    assert requested == [("synthetic_movi/c_64x64", "train", "/data", fields),
                         ("synthetic_movi/c_64x64", "validation", "/data", fields)]
    assert train["video"].shape == (2, 2, 6, 6, 3) and train["video"].min() >= -1.0
    assert [b["valid"].tolist() for b in evaluation] == [[True, True], [True, False]]
    assert evaluation[0]["segmentations"].shape == (2, 4, 8, 8)
    config.eval_resolution = "model_input"  # The authors': labels upsampled to the model input.
    evaluation = list(pipeline.dataset_from_config(config, train=False, seed=0, **SINGLE))
    assert evaluation[0]["segmentations"].shape == (2, 4, 6, 6)


def test_source_decodes_each_carried_field_and_the_ranges_it_needs():
    assert pipeline.source_fields(("video", "depth", "backward_flow")) == (
        "video", "depth", "backward_flow", "metadata/depth_range", "metadata/backward_flow_range"
    )


def test_boxes_are_the_first_frames_object_extents_and_flip_with_the_frame():
    # Objects 1..6 are the single pixels of _mirror_example's 2 x 3 frame; one more video frame at
    # t = 1 has object 7 only, which the first-frame boxes must not see.
    example = _mirror_example()
    example["video"] = np.concatenate([example["video"]] * 2)
    example["segmentations"] = np.concatenate([example["segmentations"], np.full((1, 2, 3, 1), 7, np.uint8)])
    for flip, columns in ((0.0, (0, 1, 2)), (1.0, (2, 1, 0))):
        batch = _take(
            _train([example], image_size=(2, 3), chunk_length=2, global_batch_size=1, flip_prob=flip,
                   fields=("video", "boxes"), num_boxes=8),
            1,
        )[0]
        assert "segmentations" not in batch and batch["boxes"].shape == (1, 8, 4)
        boxes = batch["boxes"][0]
        for k in range(6):  # object k + 1 at row k // 3, column columns[k % 3]
            row, col = k // 3, columns[k % 3]
            np.testing.assert_allclose(boxes[k], [row / 2, col / 3, (row + 1) / 2, (col + 1) / 3], rtol=1e-6)
        np.testing.assert_array_equal(boxes[6:], 0.0)  # object 7 is not in the first frame; 8 absent


def test_boxes_need_their_count_and_read_the_segmentations():
    with pytest.raises(ValueError, match="needs config.data.num_boxes >= 1"):
        _train([_mirror_example()], fields=("video", "boxes"))
    assert pipeline.source_fields(("video", "boxes")) == ("video", "segmentations")


def test_kept_decoded_videos_are_read_once_and_give_the_same_batches():
    videos = [_random_video(seed) for seed in range(6)]
    reads = []

    class CountingSource:  # A source that decodes (here: copies) on every read, counting them.
        def __len__(self):
            return len(videos)

        def __getitem__(self, index):
            reads.append(index)
            return {key: np.copy(value) for key, value in videos[index].items()}

    kept = pipeline.KeptDecoded(CountingSource())
    three_epochs = _take(_train(kept, chunk_length=2), 9)  # 18 examples: every video three times.
    assert sorted(reads) == list(range(6))
    _assert_same_batches(three_epochs, _take(_train(videos, chunk_length=2), 9))
