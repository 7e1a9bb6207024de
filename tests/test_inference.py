"""Inference on users' videos: `inference.load` / `Predictor.predict` and the predict CLI, on a tiny
model trained two steps on generated data (tests/tiny_train_config.py: 16x16 input, 4x4 patch
grid, 3 slots, 2-frame evaluation chunks, `zero_one` normalisation).

The trained workdir is made once per test session and shared with tests/test_visualize.py.
"""

import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from jax.experimental.compilation_cache import compilation_cache as jax_compilation_cache
from PIL import Image

from ssync_jax import checkpoints, errors, inference, run_record, train, train_state, video_io
from ssync_jax.data import movi
from ssync_jax.summaries import PALETTE
from tests import tiny_train_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def trained_workdir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A workdir as `python main.py` leaves it (config.json; checkpoints of steps 1 and 2), trained
    on the first call of the test session; later calls, from either test module, reuse it."""
    root = tmp_path_factory.getbasetemp() / "tiny_trained_workdir"
    workdir = root / "workdir"
    if not (root / "complete").exists():
        shutil.rmtree(root, ignore_errors=True)  # Whatever an interrupted first call left.
        data_dir = str(root / "tfds")
        for split in ("train", "validation"):
            movi.data_source(tiny_train_config.DATASET, split, data_dir)  # Generates it.
        config = tiny_train_config.get_config()
        config.data.data_dir = data_dir
        train.train_and_evaluate(config, str(workdir), run_evaluation=False)
        run_record.write(str(workdir), config, {})  # As main.py writes it.
        (root / "complete").touch()
    return str(workdir)


def compilation_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One persistent compilation cache for this session's inference tests and their subprocesses."""
    return str(tmp_path_factory.getbasetemp() / "inference_jax_cache")


@pytest.fixture(scope="module", autouse=True)
def shared_compilation_cache(tmp_path_factory):
    """Compiled programs go to `compilation_cache_dir`, where the CLI subprocess finds them."""
    previous = jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs
    jax.config.update("jax_compilation_cache_dir", compilation_cache_dir(tmp_path_factory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax_compilation_cache.reset_cache()  # JAX opens its cache once; this makes it open the directory just set.
    yield
    jax.config.update("jax_compilation_cache_dir", previous[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", previous[1])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> str:
    return trained_workdir(tmp_path_factory)


@pytest.fixture(scope="module")
def predictor(workdir) -> inference.Predictor:
    return inference.load(workdir)


@pytest.fixture(scope="module")
def one_pass(predictor):
    """The model over all frames [T, 16, 16, 3] of model input at once, no chunks: the independent path."""
    rngs = {"slots": jax.random.key(predictor.config.seed)}
    apply = jax.jit(lambda frames: predictor.model.apply({"params": predictor.params}, frames[None], rngs=rngs))
    return lambda frames: apply(jnp.asarray(frames, jnp.float32))


def moving_squares(num_frames: int, height: int = 16, width: int = 16) -> np.ndarray:
    """uint8 [T, H, W, 3]: a red square moving right by one pixel a frame and a fixed blue one on grey."""
    video = np.full((num_frames, height, width, 3), 128, np.uint8)
    side = max(2, height // 4)
    for t in range(num_frames):
        video[t, 1 : 1 + side, 1 + t : 1 + t + side] = (220, 30, 30)
        video[t, height - 1 - side : height - 1, width - 1 - side : width - 1] = (30, 30, 220)
    return video


def upsampled_argmax(masks: jax.Array, size: tuple[int, int]) -> np.ndarray:
    """[T, h, w, S] masks -> [T, H, W] ids: bilinear resize (half-pixel centres, no antialias), argmax."""
    frames, _, _, num_slots = masks.shape
    resized = jax.image.resize(masks, (frames, *size, num_slots), "bilinear", antialias=False)
    return np.asarray(jnp.argmax(resized, -1))


# The tests share one frame size, so the predictor compiles once (and the CLI subprocess finds its
# programs in the compilation cache); it is not the model's 16x16, so the resize is always tested.
SIZE = (24, 40)


def test_masks_have_the_input_shape_and_ids_of_the_slots(predictor):
    prediction = predictor.predict(moving_squares(5, *SIZE))
    assert prediction.masks.shape == prediction.encoder_masks.shape == (5, *SIZE)
    assert prediction.masks.dtype == prediction.encoder_masks.dtype == np.int32
    assert prediction.slots.shape == (5, 3, 16) and prediction.slots.dtype == np.float32
    for masks in (prediction.masks, prediction.encoder_masks):
        assert 0 <= masks.min() and masks.max() < 3
    assert prediction.enc_logits is None and prediction.dec_logits is None


def test_chunked_prediction_equals_one_pass_of_the_model_over_the_resized_frames(predictor, one_pass):
    video = moving_squares(5, *SIZE)  # Chunks of 2, 2 and 1 frames, the last one padded.
    prediction = predictor.predict(video, with_maps=True)
    # Model input: the pipeline's PIL bicubic resize equals jax's antialiased one (see
    # transforms.resize_bicubic), and the tiny config's normalisation is x / 255.
    assert predictor.config.data.normalization == "zero_one"
    frames = jax.image.resize(video / 255.0, (5, 16, 16, 3), "bicubic", antialias=True).clip(0.0, 1.0)
    outputs = one_pass(frames)
    np.testing.assert_allclose(prediction.slots, outputs["slots"][0], atol=1e-4)
    dec_masks = outputs["dec_masks"][0]  # [T, 4, 4, S] from the spatial-broadcast decoder
    enc_attn = outputs["enc_attn"][0].reshape(5, 4, 4, 3)  # [T, 4, 4, S]
    np.testing.assert_array_equal(prediction.masks, upsampled_argmax(dec_masks, SIZE))
    np.testing.assert_array_equal(prediction.encoder_masks, upsampled_argmax(enc_attn, SIZE))
    np.testing.assert_allclose(prediction.enc_logits, outputs["enc_logits"][0].reshape(5, 4, 4, 3), atol=1e-4)
    # The decoder already runs on the 4x4 patch grid, so its logits come back unchanged.
    np.testing.assert_allclose(prediction.dec_logits, outputs["dec_logits"][0], atol=1e-4)


def test_same_video_twice_gives_the_same_result_and_new_lengths_reuse_the_compiled_chunks(predictor, caplog):
    first = predictor.predict(moving_squares(4, *SIZE))
    with jax.log_compiles(), caplog.at_level("WARNING"):
        second = predictor.predict(moving_squares(4, *SIZE))
        predictor.predict(moving_squares(7, *SIZE))
        predictor.predict(moving_squares(1, *SIZE))
    compiles = [record.getMessage() for record in caplog.records if "Compiling" in record.getMessage()]
    assert compiles == []
    for name in ("masks", "encoder_masks", "slots"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name), err_msg=name)


@pytest.mark.parametrize(
    "video, message",
    [
        (np.zeros((2, 16, 16, 3), np.float32), "uint8 RGB.*astype"),
        (np.zeros((16, 16, 3), np.uint8), r"add a time axis \(video\[None\]\)"),
        (np.zeros((2, 16, 16, 4), np.uint8), r"3 \(RGB\) channels.*video\[\.\.\., :3\]"),
        (np.zeros((2, 16, 16, 1), np.uint8), r"3 \(RGB\) channels.*np.repeat"),
        (np.zeros((0, 16, 16, 3), np.uint8), "empty.*at least one frame"),
        (np.zeros((2, 16, 0, 3), np.uint8), "empty"),
    ],
)
def test_bad_videos_are_rejected_naming_the_problem_and_the_fix(predictor, video, message):
    with pytest.raises(ValueError, match=message):
        predictor.predict(video)


def test_frames_not_at_the_model_input_size_are_rejected(predictor):
    with pytest.raises(ValueError, match=r"float \[T >= 1, 16, 16, 3\].*Predictor.predict"):
        predictor.predict_frames(np.zeros((2, 32, 32, 3), np.float32), (32, 32))
    with pytest.raises(ValueError, match="got uint8"):
        predictor.predict_frames(np.zeros((2, 16, 16, 3), np.uint8), (16, 16))


def test_loading_reads_the_params_training_saved_at_each_step(workdir, predictor):
    # Independent path: the whole train state restored as training resumes it.
    config = predictor.config
    init_state, _, _ = train_state.make_initializer(predictor.model, config)
    abstract_state = jax.eval_shape(init_state, jax.random.key(config.seed))
    manager = checkpoints.create_manager(workdir, max_to_keep=2)
    try:
        saved = {step: checkpoints.restore(manager, abstract_state, None, step).params for step in (1, 2)}
    finally:
        manager.close()
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(predictor.params), jax.device_get(saved[2]))
    at_step_1 = inference.load(workdir, step=1)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(at_step_1.params), jax.device_get(saved[1]))
    changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), saved[1], saved[2])
    assert any(jax.tree.leaves(changed))  # The two steps are told apart.


def test_a_params_checkpoint_with_its_config_predicts_like_the_workdir(predictor, tmp_path):
    path = str(tmp_path / "params")
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, {"params": jax.device_get(predictor.params)})
    imported = inference.load(path, config=predictor.config)
    video = moving_squares(3, *SIZE)
    np.testing.assert_array_equal(imported.predict(video).masks, predictor.predict(video).masks)
    with pytest.raises(ValueError, match="holds no config; pass the config"):
        inference.load(path)


def test_load_errors_name_the_path_and_the_fix(workdir, tmp_path):
    with pytest.raises(FileNotFoundError, match="No workdir or checkpoint at .*missing.*main.py"):
        inference.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty is not a training workdir.*load\\(path, config="):
        inference.load(tmp_path / "empty")
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    shutil.copy(os.path.join(workdir, checkpoints.CONFIG_FILE), untrained)
    with pytest.raises(FileNotFoundError, match="No checkpoint in .*untrained/checkpoints; train first"):
        inference.load(untrained)
    with pytest.raises(FileNotFoundError, match=r"step 7 .*steps there: \[1, 2\]"):
        inference.load(workdir, step=7)
    with pytest.raises(ValueError, match="one step of a workdir's checkpoints.*load\\(workdir, step=N\\)"):
        inference.load(os.path.join(workdir, "checkpoints", "2"))
    (tmp_path / "model.ckpt").write_bytes(b"torch")
    with pytest.raises(ValueError, match="model.ckpt is a file.*import_torch_checkpoint"):
        inference.load(tmp_path / "model.ckpt")


def test_config_json_round_trips_the_settings_inference_reads(workdir, predictor):
    with open(os.path.join(workdir, checkpoints.CONFIG_FILE)) as file:
        written = json.load(file)
    assert written["data"]["image_size"] == [16, 16] and predictor.image_size == (16, 16)
    assert predictor.rollout.chunk_length == written["eval"]["chunk_length"] == 2


@pytest.mark.parametrize(
    "size, model_size, padding",
    [((24, 40), (16, 16), ((8, 8), (0, 0))), ((41, 20), (16, 16), ((0, 0), (10, 11))), ((30, 60), (28, 56), ((0, 0), (0, 0)))],
)
def test_padding_to_the_models_aspect_ratio_is_centred(size, model_size, padding):
    assert inference.padding_to_aspect(size, model_size) == padding


def test_fit_pad_predicts_the_edge_padded_square_video_and_cuts_its_masks_back(predictor):
    video = moving_squares(3, *SIZE)  # 24x40: 8 rows of edge padding above and below
    padded = np.pad(video, ((0, 0), (8, 8), (0, 0), (0, 0)), mode="edge")
    square = predictor.predict(padded)
    fitted = predictor.predict(video, fit="pad")
    np.testing.assert_array_equal(fitted.masks, square.masks[:, 8:32])
    np.testing.assert_array_equal(fitted.encoder_masks, square.encoder_masks[:, 8:32])
    assert fitted.masks.shape == (3, *SIZE)
    with pytest.raises(ValueError, match="fit must be one of"):
        predictor.predict(video, fit="crop")


def test_predict_cli_writes_masks_and_an_overlay_of_a_frame_folder(workdir, predictor, tmp_path, tmp_path_factory):
    video = moving_squares(3, *SIZE)
    frames = tmp_path / "frames"
    frames.mkdir()
    for t, frame in enumerate(video):
        Image.fromarray(frame).save(frames / f"frame_{t:03d}.png")
    out = tmp_path / "out"
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        JAX_COMPILATION_CACHE_DIR=compilation_cache_dir(tmp_path_factory),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    )
    command = [sys.executable, "-m", "ssync_jax.tools.predict", f"--workdir={workdir}", f"--input={frames}"]
    result = subprocess.run([*command, f"--out={out}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert str(out / "masks.npz") in result.stdout and str(out / "overlay.mp4") in result.stdout
    # The tool speaks alone: its four lines, none of the libraries' (orbax, JAX backends, TensorFlow).
    assert len(result.stdout.splitlines()) == 4 and not result.stderr.strip(), result.stderr[-3000:]
    assert "from 40x24 to the model's 16x16: aspect 1.67 squashed to 1.00 (pass --fit=pad to keep it)" in result.stdout
    expected = predictor.predict(video)
    with np.load(out / "masks.npz") as saved:
        assert sorted(saved) == ["encoder_masks", "masks", "slots"]
        np.testing.assert_array_equal(saved["masks"], expected.masks)
        np.testing.assert_array_equal(saved["encoder_masks"], expected.encoder_masks)
        np.testing.assert_allclose(saved["slots"], expected.slots, atol=1e-6)
    # The overlay: each pixel 40 % the frame, 60 % its slot's colour (up to the MP4's compression).
    overlay = video_io.read_video(out / "overlay.mp4")
    assert overlay.shape == (3, *SIZE, 3)
    tinted = 0.4 * video + 0.6 * 255 * PALETTE[expected.masks]  # [T, H, W, 3]
    assert np.abs(overlay - tinted).mean() < 8


def test_predict_cli_on_an_unreadable_video_says_so_in_one_line(workdir, tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video")
    command = [sys.executable, "-m", "ssync_jax.tools.predict", f"--workdir={workdir}", f"--input={corrupt}"]
    result = subprocess.run([*command, f"--out={tmp_path / 'out'}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: Cannot decode {corrupt} as a video"), result.stderr
    assert "re-encode it" in lines[0]


@pytest.mark.parametrize("where", ["a file", "under a file", "holding masks.npz"])
def test_predict_cli_checks_its_output_before_the_model_runs(workdir, tmp_path, where):
    frames = tmp_path / "frames.mp4"
    video_io.write_video(str(frames), moving_squares(2, *SIZE), 8.0)
    (tmp_path / "file").write_text("x")
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / "masks.npz").write_text("an earlier prediction")
    out = {"a file": "file", "under a file": "file/out", "holding masks.npz": "earlier"}[where]
    command = [sys.executable, "-m", "ssync_jax.tools.predict", f"--workdir={workdir}", f"--input={frames}"]
    result = subprocess.run([*command, f"--out={tmp_path / out}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: --out {tmp_path}") and ("file" in line or "already holds masks.npz" in line), line
    assert (tmp_path / "earlier" / "masks.npz").read_text() == "an earlier prediction"


def test_predict_cli_boxes_are_pixels_of_the_input_turned_into_fractions():
    from ssync_jax.tools.predict import parse_boxes

    np.testing.assert_allclose(parse_boxes("2,4,6,10; 0,0,10,20", (10, 20)), [[0.2, 0.2, 0.6, 0.5], [0, 0, 1, 1]])
    for text in ("1,2,3", "1,2,3,4;5,6", "a,b,c,d"):
        with pytest.raises(ValueError, match="y_min,x_min,y_max,x_max in pixels"):
            parse_boxes(text, (10, 20))


def test_boxes_for_a_model_without_box_conditioning_are_refused(predictor):
    with pytest.raises(ValueError, match="not box-conditioned"):
        predictor.predict(moving_squares(2, *SIZE), boxes=np.zeros((1, 4)))


def test_a_model_directory_predicts_what_its_workdir_does_and_is_never_overwritten(workdir, predictor, tmp_path):
    from ssync_jax.tools import save_model

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "test_metrics.json").write_text('{"video_fg_ari": 0.5}')
    info = save_model.save_model(workdir, str(tmp_path / "model"), None, str(tmp_path / "run" / "test_metrics.json"), "tiny")
    assert info["step"] == 2 and info["test_metrics"] == {"video_fg_ari": 0.5} and info["note"] == "tiny"
    assert sorted(os.listdir(tmp_path / "model")) == ["config.json", "model.json", "params.safetensors"]
    # A model directory holds a config.json too, yet is no training workdir (no output goes into it).
    assert checkpoints.is_workdir(workdir) and not checkpoints.is_workdir(str(tmp_path / "model"))
    loaded = inference.load(str(tmp_path / "model"))
    video = moving_squares(3, *SIZE)
    expected, got = predictor.predict(video), loaded.predict(video)
    np.testing.assert_array_equal(got.masks, expected.masks)
    np.testing.assert_array_equal(got.slots, expected.slots)
    with pytest.raises(errors.WouldOverwriteError, match="exists and is not empty"):
        save_model.save_model(workdir, str(tmp_path / "model"), None, None, "again")


def test_a_users_script_anywhere_imports_the_package_and_loads_a_workdir_in_silence(workdir, tmp_path):
    # The README's install (`pip install --no-deps -e .`) puts the package on every path; a library
    # call prints nothing of the libraries' (orbax's read-only notes, JAX's backends).
    code = f"from ssync_jax import inference; inference.load({str(workdir)!r}); print('loaded')"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "loaded\n" and result.stderr == "", result.stderr
