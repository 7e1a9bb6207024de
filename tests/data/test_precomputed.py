"""Training from pre-extracted backbone tokens: extraction, its resumption, the token pipeline, the
model on tokens, and a whole `train_and_evaluate` from them.

Setting: the generated tiny dataset of tests/tiny_train_config.py (4 training videos of 3 frames at
32x32) at 42x42 model input, and the tiny random DINOv2 fixture (width 64, 2 blocks, 4 heads; a 3x3
patch grid), registered as the variant "vit_test_tiny" for these tests.
"""

import json
import os
from pathlib import Path

import grain
import jax
import numpy as np
import pytest

from configs import common, synthetic
from ssync_jax import checkpoints, sharding, train
from ssync_jax.data import movi, pipeline, precomputed, training, transforms
from ssync_jax.models import build_model, dinov2, dinov2_weights, load_pretrained_backbone
from tests.model_configs import dinov2_model
from ssync_jax.objectives import total_loss
from ssync_jax.tools import extract_features as extraction
from tests import tiny_train_config

pytestmark = pytest.mark.usefixtures("compilation_cache")

HF_DIR = str(Path(__file__).resolve().parents[1] / "fixtures" / "dinov2_tiny_hf")
VARIANT = "vit_test_tiny"
SIZE = 42  # 3x3 patches of 14 pixels.
NUM_VIDEOS, NUM_FRAMES, GRID, WIDTH = 4, 3, 9, 64


@pytest.fixture(scope="module", autouse=True)
def tiny_variant():
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(dinov2.VARIANTS, VARIANT, (64, 2, 4))
        yield


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    directory = str(tmp_path_factory.mktemp("tfds"))
    for split in ("train", "validation"):
        movi.data_source(tiny_train_config.DATASET, split, directory)  # Generates it on first use.
    return directory


def tiny_dinov2_config(data_dir: str):
    """tests/tiny_train_config.py with the tiny DINOv2 (pretrained weights: the fixture) and an MLP decoder."""
    config = tiny_train_config.get_config()
    config.data.data_dir = data_dir
    config.data.image_size = (SIZE, SIZE)
    config.data.normalization = "imagenet"
    config.model = dinov2_model(VARIANT, num_slots=3, slot_dim=16, image_size=(SIZE, SIZE), weights=HF_DIR)
    config.model.decoder.hidden_sizes = (32,)
    return config


@pytest.fixture(scope="module")
def features(data_dir, tmp_path_factory):
    """float32 and float16 extractions of the training split (2 videos per shard: 2 shards)."""
    config = tiny_dinov2_config(data_dir)
    out = {}
    for dtype in ("float32", "float16"):
        directory = str(tmp_path_factory.mktemp(dtype))
        extraction.extract_features(config, directory, batch_size=4, dtype=dtype, videos_per_shard=2)
        out[dtype] = directory
    return out


def reference_tokens(data_dir: str) -> np.ndarray:
    """The fixture DINOv2 applied directly to every training video's resized frames, as stored and
    mirrored: [V, 2, T, N, C]."""
    model, params = dinov2_weights.from_pretrained(HF_DIR, image_size=SIZE)
    apply = jax.jit(model.apply)
    source = movi.data_source(tiny_train_config.DATASET, "train", data_dir)
    out = []
    for index in range(len(source)):
        frames = transforms.resize_bicubic(source[index]["video"], (SIZE, SIZE))
        frames = (frames - transforms.IMAGENET_MEAN) / transforms.IMAGENET_STD  # [T, H, W, 3]
        out.append([apply({"params": params}, frames), apply({"params": params}, frames[:, :, ::-1])])
    return np.asarray(out)


def stored_tokens(directory: str, dtype: str) -> np.ndarray:
    """Every record, decoded by the documented layout: [V, 2, T, N, C]."""
    with open(os.path.join(directory, precomputed.METADATA)) as file:
        shards = json.load(file)["shards"]
    records = grain.sources.ArrayRecordDataSource([os.path.join(directory, name) for name in shards])
    tokens = np.stack([np.frombuffer(records[i], "<" + np.dtype(dtype).str[1:]) for i in range(len(records))])
    return tokens.reshape(NUM_VIDEOS, 2, NUM_FRAMES, GRID, WIDTH)


def take(dataset, count: int) -> list[dict]:
    iterator = iter(dataset)
    try:
        return [next(iterator) for _ in range(count)]
    finally:
        iterator.close()


def test_extracted_tokens_equal_the_backbone_on_the_frames_and_on_the_mirrored_frames(data_dir, features):
    expected = reference_tokens(data_dir)
    np.testing.assert_allclose(stored_tokens(features["float32"], "float32"), expected, atol=1e-5, rtol=0)
    # float16 keeps 11 significant bits: relative error <= 2^-11, on top of float32's differences.
    np.testing.assert_allclose(stored_tokens(features["float16"], "float16"), expected, rtol=2**-11, atol=1e-5)
    # Why the mirrored copy is needed: the tokens of mirrored frames are not the mirrored tokens.
    mirrored_grid = expected[:, 0].reshape(NUM_VIDEOS, NUM_FRAMES, 3, 3, WIDTH)[:, :, :, ::-1]
    assert np.abs(mirrored_grid.reshape(expected[:, 1].shape) - expected[:, 1]).max() > 0.1


def test_metadata_describes_the_extraction(features):
    metadata = precomputed.read_metadata(features["float16"])
    assert metadata["num_videos"] == NUM_VIDEOS and metadata["num_frames"] == NUM_FRAMES
    assert metadata["grid"] == [3, 3] and metadata["token_dim"] == WIDTH and metadata["dtype"] == "float16"
    assert metadata["dinov2_variant"] == VARIANT and metadata["weights"] == HF_DIR
    assert metadata["image_size"] == [SIZE, SIZE] and metadata["split"] == "train"
    assert metadata["dataset"] == tiny_train_config.DATASET
    assert sorted(os.listdir(features["float16"])) == [precomputed.METADATA, *metadata["shards"]]


def test_complete_features_are_not_replaced_without_overwrite(data_dir, features):
    config = tiny_dinov2_config(data_dir)
    with pytest.raises(FileExistsError, match="already holds complete features; pass --overwrite"):
        extraction.extract_features(config, features["float16"], dtype="float16", videos_per_shard=2)


def test_a_foreign_non_empty_directory_is_refused(data_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty and holds no extracted features"):
        extraction.extract_features(tiny_dinov2_config(data_dir), str(tmp_path))
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_an_interrupted_extraction_is_never_read_and_resumes_to_the_same_records(data_dir, features, tmp_path):
    config = tiny_dinov2_config(data_dir)
    original_map = extraction._PreparedFrames.map

    def interrupted(self, element):
        if element == 3:
            raise KeyboardInterrupt
        return original_map(self, element)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(extraction._PreparedFrames, "map", interrupted)
        with pytest.raises(KeyboardInterrupt):
            extraction.extract_features(config, str(tmp_path), batch_size=4, dtype="float32", videos_per_shard=2)
    first_shard = tmp_path / precomputed.shard_names("train", 2)[0]
    finished_at = first_shard.stat().st_mtime_ns
    with pytest.raises(FileNotFoundError, match="holds an unfinished extraction.*rerun, to resume"):
        precomputed.train_dataset(str(tmp_path), chunk_length=1, global_batch_size=2, seed=0)
    with pytest.raises(FileExistsError, match="other settings \\(differing: dtype\\)"):
        extraction.extract_features(config, str(tmp_path), batch_size=4, dtype="float16", videos_per_shard=2)

    extraction.extract_features(config, str(tmp_path), batch_size=4, dtype="float32", videos_per_shard=2)
    assert first_shard.stat().st_mtime_ns == finished_at  # Kept, not recomputed.
    np.testing.assert_array_equal(
        stored_tokens(str(tmp_path), "float32"), stored_tokens(features["float32"], "float32")
    )


def test_token_batches_take_the_chunks_and_flips_the_video_pipeline_takes(data_dir, features):
    """Same seed, same videos, chunks and mirrors: the tokens are the backbone's on the video batches."""
    common = dict(chunk_length=1, global_batch_size=2, seed=3, flip_prob=0.5, process_index=0, process_count=1)
    token_batches = take(precomputed.train_dataset(features["float32"], **common), 6)
    source = movi.data_source(tiny_train_config.DATASET, "train", data_dir)
    video_batches = take(
        pipeline.train_dataset(source, image_size=(SIZE, SIZE), normalization="imagenet", **common), 6
    )
    model, params = dinov2_weights.from_pretrained(HF_DIR, image_size=SIZE)
    apply = jax.jit(model.apply)
    for tokens, videos in zip(token_batches, video_batches):
        np.testing.assert_array_equal(tokens["video_index"], videos["video_index"])
        assert tokens["tokens"].shape == (2, 1, GRID, WIDTH) and tokens["tokens"].dtype == np.float32
        expected = apply({"params": params}, videos["video"].reshape(2, SIZE, SIZE, 3))
        np.testing.assert_allclose(tokens["tokens"][:, 0], expected, atol=1e-5, rtol=0)


def test_token_iterator_resumes_on_the_next_batch_from_its_state(features):
    dataset = precomputed.train_dataset(features["float16"], chunk_length=1, global_batch_size=2, seed=0)
    iterator = iter(dataset)
    next(iterator)
    state = iterator.get_state()
    expected = [next(iterator) for _ in range(3)]
    iterator.close()
    resumed = iter(dataset)
    resumed.set_state(state)
    for batch in expected:
        got = next(resumed)
        np.testing.assert_array_equal(got["tokens"], batch["tokens"])
        np.testing.assert_array_equal(got["video_index"], batch["video_index"])
    resumed.close()


def test_the_loss_on_tokens_equals_the_loss_on_the_video(data_dir, features):
    """Same params (random, with the fixture backbone) and the same chunks: every loss term agrees."""
    config = tiny_dinov2_config(data_dir)
    config.data.precomputed_features = features["float32"]
    video_batch = take(pipeline.dataset_from_config(config.data, train=True, seed=0), 1)[0]
    token_batch = take(precomputed.dataset_from_config(config, seed=0), 1)[0]
    model = build_model(config.model)
    shapes = jax.eval_shape(model.init, jax.random.key(0), video_batch["video"])["params"]
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda s: rng.normal(0.0, 0.3, s.shape).astype(s.dtype), shapes)
    params = load_pretrained_backbone(params, config.model)
    loss_fn = total_loss.build_loss_fn(config.losses, config.ssync)

    @jax.jit
    def terms(batch):
        outputs = model.apply({"params": params}, batch.get("video"), tokens=batch.get("tokens"))
        return loss_fn(outputs, step=1, total_steps=1)[1]

    from_video = terms({"video": video_batch["video"]})
    from_tokens = terms({"tokens": token_batch["tokens"]})
    assert sorted(from_tokens) == ["reconstruction", "slot_contrast", "ssync_boundary", "ssync_interior"]
    for name, value in from_video.items():
        np.testing.assert_allclose(from_tokens[name], value, rtol=1e-4, err_msg=name)


def test_one_way_in_gives_tokens_or_frames_and_the_frames_to_draw(data_dir, features):
    """`training.training_batches` reads the tokens when the config names them, the frames otherwise;
    token runs draw the first validation video's first chunk, frame runs their batch's own frames."""
    config = tiny_dinov2_config(data_dir)
    mesh = sharding.make_mesh(jax.local_devices()[:1])
    frames = training.training_batches(config, mesh)
    frame_batch = next(frames.batches)
    assert "video" in frame_batch and "tokens" not in frame_batch and frames.preview is None
    drawn, local = frames.frames_to_draw({"video": "global"}, frame_batch)
    assert drawn == "global" and local is frame_batch["video"]

    config.data.precomputed_features = features["float32"]
    tokens = training.training_batches(config, mesh)
    token_batch = next(tokens.batches)
    assert "tokens" in token_batch and "video" not in token_batch
    # The same first training batch as the video pipeline's, as tokens.
    np.testing.assert_array_equal(token_batch["video_index"], frame_batch["video_index"])
    on_devices, on_host = tokens.frames_to_draw(token_batch, token_batch)
    first = next(iter(pipeline.dataset_from_config(config.data, train=False, seed=0, process_index=0, process_count=1)))
    np.testing.assert_array_equal(on_host, first["video"][:1, : config.data.chunk_length])
    np.testing.assert_array_equal(np.asarray(on_devices), on_host)
    assert training.training_batches(config, mesh, images=False).preview is None


@pytest.mark.slow  # Compiles initialisation, train step, image step and evaluation: ~2 min on 2 cores.
def test_train_and_evaluate_from_tokens_trains_and_evaluates_on_video(data_dir, features, tmp_path):
    config = tiny_dinov2_config(data_dir)
    config.data.precomputed_features = features["float16"]
    config.image_every_steps = 2
    state = train.train_and_evaluate(config, str(tmp_path))
    assert int(state.step) == 2
    with open(tmp_path / checkpoints.EVAL_JSON) as file:
        results = json.load(file)
    assert results["num_videos"] == 2 and -1.0 <= results["video_fg_ari"] <= 1.0
    events = tiny_train_config.read_events(str(tmp_path))
    assert sorted(events["loss/total"]) == [1, 2] and np.isfinite(float(events["loss/total"][2]))
    assert "images/input" in events and "images/ssync_encoder_labels_boundary" in events


@pytest.mark.parametrize(
    "setting, value, named",
    [
        ("data.image_size", (28, 28), r"image_size: features \[42, 42\], config \[28, 28\]"),
        ("model.encoder.weights", "facebook/dinov2-small", "weights: features '.*dinov2_tiny_hf', config 'facebook"),
        ("data.normalization", "zero_one", "normalization: features 'imagenet', config 'zero_one'"),
    ],
)
def test_training_on_features_of_other_settings_fails_naming_the_difference(
    data_dir, features, tmp_path, setting, value, named
):
    config = tiny_dinov2_config(data_dir)
    config.data.precomputed_features = features["float16"]
    section, key = setting.rsplit(".", 1)
    config_section = config
    for part in section.split("."):
        config_section = config_section[part]
    config_section[key] = value
    with pytest.raises(ValueError, match=named):
        train.train_and_evaluate(config, str(tmp_path))


def test_training_on_a_directory_without_features_says_how_to_extract_them(data_dir, tmp_path):
    config = tiny_dinov2_config(data_dir)
    config.data.precomputed_features = str(tmp_path)
    with pytest.raises(FileNotFoundError, match="holds no extracted features.*extract_features --config"):
        train.train_and_evaluate(config, str(tmp_path / "workdir"))


def test_tokens_cannot_stand_in_for_a_trained_backbone_or_train_a_pixel_decoder():
    config = dinov2_model(VARIANT, num_slots=3, slot_dim=16, image_size=(SIZE, SIZE))
    tokens = jax.ShapeDtypeStruct((1, 1, GRID, WIDTH), np.float32)
    video = jax.ShapeDtypeStruct((1, 1, SIZE, SIZE, 3), np.float32)

    def apply_on_tokens(model):
        return jax.eval_shape(lambda v, t: model.apply(model.init(jax.random.key(0), v), tokens=t), video, tokens)

    config.encoder.freeze_backbone = False
    with pytest.raises(ValueError, match="frozen backbone only"):
        apply_on_tokens(build_model(config))
    config.encoder.freeze_backbone = True
    config.decoder = common.spatial_broadcast_decoder(
        resolution=(3, 3), features=(8,), upsample=(False,), kernel_size=3, patch_size=1, target="video"
    )
    with pytest.raises(ValueError, match="decoder.name='mlp'"):
        apply_on_tokens(build_model(config))


def test_extraction_needs_a_frozen_pretrained_dinov2(tmp_path):
    config = synthetic.get_config()  # A trained CNN.
    with pytest.raises(ValueError, match="Only a frozen, pretrained DINOv2"):
        extraction.extract_features(config, str(tmp_path))
