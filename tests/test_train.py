"""End to end: `train_and_evaluate` on a tiny generated dataset (the flax-examples test), resume,
non-finite stop, evaluation of a checkpoint, config errors, the learning-rate schedule.

The tiny setting is tests/tiny_train_config.py.
"""

import json
import os
import re
import signal
import time

import jax
from jax._src import array
import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs import movi_c, movi_e, savi_movi_c, synthetic
from ssync_jax import checkpoints, errors, run_record, sharding, train, train_state
from ssync_jax.models import build_model
from ssync_jax.data import movi
from tests import tiny_train_config

pytestmark = pytest.mark.usefixtures("compilation_cache")

TINY_DATASET = tiny_train_config.DATASET
read_events = tiny_train_config.read_events


def tiny_config(data_dir: str, num_train_steps: int = 2):
    config = tiny_train_config.get_config()
    config.data.data_dir = data_dir
    config.num_train_steps = num_train_steps
    return config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    directory = str(tmp_path_factory.mktemp("tfds"))
    for split in ("train", "validation"):
        movi.data_source(TINY_DATASET, split, directory)  # Generates it on first use.
    return directory


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """Two steps with images at step 2 and the final evaluation."""
    workdir = str(tmp_path_factory.mktemp("trained"))
    config = tiny_config(data_dir)
    config.image_every_steps = 2
    state = train.train_and_evaluate(config, workdir)
    return config, workdir, state


def test_train_and_evaluate_takes_the_steps_and_saves_a_checkpoint(trained):
    config, workdir, state = trained
    assert int(state.step) == 2
    manager = checkpoints.create_manager(workdir, max_to_keep=2)
    assert manager.all_steps() == [1, 2]
    manager.close()


def test_tensorboard_gets_every_loss_term_norms_ssync_statistics_and_images(trained):
    _, workdir, _ = trained
    events = read_events(workdir)
    for tag in (
        "loss/total", "loss/reconstruction", "loss/ssync_boundary", "loss/ssync_interior",
        "optim/learning_rate", "optim/l2_grads", "optim/l2_params", "optim/l2_updates",
        "ssync/boundary_fraction", "ssync/interior_fraction", "ssync/merged_slots",
        "ssync_boundary/active", "eval/video_fg_ari", "eval/video_mbo", "eval/enc_image_fg_ari",
    ):  # fmt: skip
        assert tag in events, tag
    assert sorted(events["loss/total"]) == [1, 2]
    assert 0.0 <= float(events["ssync/boundary_fraction"][2]) <= 1.0
    images = [tag for tag in events if tag.startswith("images/")]
    assert sorted(images) == [
        "images/decoder_masks", "images/encoder_attention", "images/input",
        "images/ssync_decoder_labels_interior", "images/ssync_encoder_labels_boundary",
    ]  # fmt: skip
    width, height = (int(x) for x in events["images/input"][2][:2])  # Encoded as [width, height, png].
    assert (width, height) == (2 * 16, 16)  # Two 16x16 frames side by side.


def test_final_evaluation_writes_metrics_json_over_the_validation_videos(trained):
    _, workdir, _ = trained
    with open(os.path.join(workdir, checkpoints.EVAL_JSON)) as file:
        results = json.load(file)
    assert results["step"] == 2
    assert results["num_videos"] == 2
    for name in ("video_fg_ari", "image_fg_ari", "video_mbo", "image_mbo", "video_miou", "enc_video_fg_ari"):
        assert -1.0 <= results[name] <= 1.0, name
    for name in ("video_mbo", "image_mbo", "video_miou"):
        assert results[name] >= 0.0, name


def test_evaluating_the_checkpoint_reproduces_the_end_of_training_metrics(trained):
    config, workdir, _ = trained
    with open(os.path.join(workdir, checkpoints.EVAL_JSON)) as file:
        during_training = json.load(file)
    os.remove(os.path.join(workdir, checkpoints.EVAL_JSON))
    results = train.evaluate_checkpoint(config, workdir)
    with open(os.path.join(workdir, checkpoints.EVAL_JSON)) as file:
        written = json.load(file)
    assert written == {"step": 2, **results}
    for name, value in results.items():
        np.testing.assert_allclose(value, during_training[name], rtol=1e-6, err_msg=name)


def test_evaluating_imported_params_gives_the_metrics_of_those_params(trained, tmp_path):
    config, workdir, state = trained
    imported = str(tmp_path / "imported")
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(imported, {"params": jax.device_get(state.params)})
    config = config.copy_and_resolve_references()
    config.eval.params_checkpoint = imported
    results = train.evaluate_checkpoint(config, str(tmp_path / "eval"))
    with open(os.path.join(workdir, checkpoints.EVAL_JSON)) as file:
        during_training = json.load(file)
    for name, value in results.items():
        np.testing.assert_allclose(value, during_training[name], rtol=1e-6, err_msg=name)


@pytest.mark.slow  # Moved out of the quick suite (>20 s on 2 cores); CI runs it in the slow command.
def test_resuming_after_a_stop_reproduces_the_uninterrupted_loss_trajectory(data_dir, tmp_path):
    config = tiny_config(data_dir, num_train_steps=4)
    uninterrupted = train.train_and_evaluate(config, str(tmp_path / "a"), run_evaluation=False)

    config.stop_after_step = 2
    stopped = train.train_and_evaluate(config, str(tmp_path / "b"), run_evaluation=False)
    assert int(stopped.step) == 2
    config.stop_after_step = None
    resumed = train.train_and_evaluate(config, str(tmp_path / "b"), run_evaluation=False)

    assert int(resumed.step) == 4
    expected, got = read_events(str(tmp_path / "a")), read_events(str(tmp_path / "b"))
    for tag in ("loss/total", "loss/reconstruction", "loss/ssync_interior", "optim/l2_grads"):
        assert sorted(got[tag]) == [1, 2, 3, 4]
        np.testing.assert_array_equal([got[tag][s] for s in range(1, 5)], [expected[tag][s] for s in range(1, 5)], tag)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed.params), jax.device_get(uninterrupted.params))


def test_non_finite_loss_stops_naming_step_and_term_and_keeps_the_last_good_checkpoint(data_dir, tmp_path):
    config = tiny_config(data_dir, num_train_steps=4)
    # Step 1 has learning rate 0 (warm-up); step 2 moves every weight by ~1e15, so the forward
    # pass of step 3 overflows while the norms of step 2 still fit in float32.
    config.optimizer.learning_rate = 1e15
    with pytest.raises(FloatingPointError, match=r"Non-finite .*loss/reconstruction.* at step 3"):
        train.train_and_evaluate(config, str(tmp_path), run_evaluation=False)
    manager = checkpoints.create_manager(str(tmp_path), max_to_keep=2)
    assert manager.all_steps() == [1, 2]
    manager.close()


@pytest.mark.slow  # Moved out of the quick suite (>20 s on 2 cores); CI runs it in the slow command.
def test_steps_that_neither_log_nor_save_move_nothing_from_device_to_host(data_dir, tmp_path, monkeypatch):
    # Every device-to-host copy of a jax.Array (device_get, float(), np.asarray) reads its `_value`
    # (a JAX internal: this test counts through it). Runs that log and save once must read as many
    # values whatever their length, so the steps between read none.
    reads = []
    fetch = array.ArrayImpl._value.fget
    monkeypatch.setattr(array.ArrayImpl, "_value", property(lambda self: reads.append(1) or fetch(self)))

    def reads_of_a_run(steps: int) -> int:
        config = tiny_config(data_dir, num_train_steps=steps)
        config.log_every_steps = config.checkpoint_every_steps = steps
        reads.clear()
        train.train_and_evaluate(config, str(tmp_path / f"steps_{steps}"), run_evaluation=False)
        return len(reads)

    assert reads_of_a_run(2) == reads_of_a_run(5) > 0


def test_rerunning_a_finished_run_says_it_is_complete_and_where_its_results_are(trained, caplog):
    config, workdir, state = trained
    with caplog.at_level("INFO", logger="absl"):
        again = train.train_and_evaluate(config, workdir)
    assert int(again.step) == int(state.step) == 2
    message = next(r.getMessage() for r in caplog.records if "complete" in r.getMessage())
    assert f"at step 2 of 2; the evaluation is in {os.path.join(workdir, checkpoints.EVAL_JSON)}" in message
    assert f"--config.init_from={workdir}" in message and not any("Resumed" in r.getMessage() for r in caplog.records)


def test_missing_dataset_error_says_how_to_get_it(tmp_path):
    config = tiny_config(str(tmp_path))
    config.data.name = "movi_c/128x128:1.0.0"
    with pytest.raises(movi.DatasetNotFoundError, match="python -m ssync_jax.data.movi_convert"):
        train.train_and_evaluate(config, str(tmp_path / "workdir"))


def test_learning_rate_warms_up_linearly_then_halves_exponentially_by_the_last_step():
    config = movi_c.get_config()
    schedule = train_state.learning_rate_schedule(config.optimizer, num_steps=100_000)
    np.testing.assert_allclose(
        [schedule(0), schedule(1250), schedule(2500), schedule(100_000)], [0.0, 4e-4, 8e-4, 4e-4], rtol=1e-5
    )
    midway = 2500 + (100_000 - 2500) / 2
    np.testing.assert_allclose(schedule(midway), 8e-4 * 0.5**0.5, rtol=1e-5)


def test_first_adam_step_moves_trainable_params_by_the_learning_rate_and_never_the_frozen_backbone():
    config = movi_c.get_config()
    config.optimizer.warmup_steps = 0
    params = {"encoder": {"backbone": {"w": np.ones(3)}, "output_transform": {"w": np.ones(3)}}}
    tx, _ = train_state.make_optimizer(config, params)
    grads = {"encoder": {"backbone": {"w": np.full(3, 100.0)}, "output_transform": {"w": np.array([300.0, 0.0, -4.0])}}}
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_array_equal(updates["encoder"]["backbone"]["w"], 0.0)
    # Adam's first step is -lr * g / |g| per coordinate, whatever the clipping did to the scale.
    np.testing.assert_allclose(updates["encoder"]["output_transform"]["w"], [-8e-4, 0.0, 8e-4], rtol=1e-4)


def test_paper_configs_hold_the_papers_settings():
    c, e = movi_c.get_config(), movi_e.get_config()
    assert (c.model.num_slots, c.model.slot_dim, c.model.encoder.dinov2_variant) == (11, 64, "vit_s14")
    assert (e.model.num_slots, e.model.slot_dim, e.model.encoder.dinov2_variant) == (15, 128, "vit_b14")
    assert (c.ssync.merge_iou_threshold, e.ssync.merge_iou_threshold) == (0.7, 0.65)
    assert (c.num_train_steps, e.num_train_steps) == (100_000, 300_000)
    for config in (c, e):
        assert tuple(config.data.image_size) == (336, 336) and config.data.global_batch_size == 128
        assert config.data.chunk_length == 4 and config.data.flip_prob == 0.5
        corrector = config.model.corrector
        assert (corrector.num_iterations, corrector.first_frame_iterations) == (2, 3)
        assert tuple(config.model.decoder.hidden_sizes) == (1024, 1024, 1024)
        assert (config.optimizer.learning_rate, config.optimizer.warmup_steps) == (8e-4, 2500)
        assert (config.optimizer.final_lr_fraction, config.optimizer.grad_clip_norm) == (0.5, 0.05)
        assert config.losses.to_dict() == {
            "reconstruction": {"weight": 1.0},
            "slot_contrast": {"weight": 0.5, "temperature": 0.1},
            "ssync_boundary": {"weight": 1.0, "warmup_fraction": 0.3},
            "ssync_interior": {"weight": 1.0, "warmup_fraction": 0.3},
        }
    for module in (movi_c, movi_e, savi_movi_c, synthetic):
        base = module.get_config("base")
        assert not any(name.startswith("ssync_") for name in base.losses), module.__name__


@pytest.mark.slow  # Moved out of the quick suite (>20 s on 2 cores); CI runs it in the slow command.
def test_box_conditioned_slots_train_evaluate_predict_and_visualise_end_to_end(data_dir, tmp_path):
    from ssync_jax import inference
    from ssync_jax.tools import visualize

    config = tiny_config(data_dir)
    config.model.initializer.name = "box_conditioned"
    config.data.fields = ("video", "segmentations", "boxes")
    workdir = str(tmp_path / "boxes")
    state = train.train_and_evaluate(config, workdir)
    assert int(state.step) == 2 and "mlp" in state.params["initializer"]
    with open(os.path.join(workdir, checkpoints.EVAL_JSON)) as file:
        assert json.load(file)["num_videos"] == 2
    run_record.write(workdir, config, {})
    predictor = inference.load(workdir)
    video = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="conditioned on the objects' boxes in the first frame"):
        predictor.predict(video)
    boxes = np.array([[0.1, 0.1, 0.5, 0.5]], np.float32)
    prediction = predictor.predict(video, boxes=boxes)
    assert prediction.masks.shape == (5, 16, 16)
    # Chunks (the eval chunk is 2 frames) carry the slots the boxes started: one pass gives the same.
    frames = video.astype(np.float32) / 255.0  # the tiny config's zero_one normalisation, 16x16 input
    one_pass = predictor.model.apply({"params": predictor.params}, frames[None], np.pad(boxes, ((0, 1), (0, 0)))[None])
    np.testing.assert_allclose(prediction.slots, one_pass["slots"][0], rtol=1e-5, atol=1e-5)  # float32 rounding of chunked vs one pass
    paths = visualize.write_visualizations(predictor, "validation", 1, str(tmp_path / "videos"))
    assert len(paths) == 1 and os.path.exists(paths[0])


def test_box_conditioned_slots_without_boxes_in_the_data_say_what_to_add(data_dir, tmp_path):
    config = tiny_config(data_dir)
    config.model.initializer.name = "box_conditioned"
    with pytest.raises(ValueError, match="add 'boxes' to config.data.fields"):
        train.train_and_evaluate(config, str(tmp_path))


def test_a_flow_target_trains_on_the_batchs_forward_flow(data_dir, tmp_path):
    config = tiny_config(data_dir)
    config.model.decoder.target = "flow"
    with pytest.raises(ValueError, match="reconstructs the batch's 'forward_flow': add it to config.data.fields"):
        train.train_and_evaluate(config, str(tmp_path / "missing"), run_evaluation=False)
    config.data.fields = ("video", "segmentations", "forward_flow")
    state = train.train_and_evaluate(config, str(tmp_path / "flow"), run_evaluation=False)
    events = read_events(str(tmp_path / "flow"))
    assert int(state.step) == 2 and np.isfinite(events["loss/reconstruction"][2])


def test_a_run_started_from_another_continues_from_its_state_and_data_position(data_dir, tmp_path, caplog):
    config = tiny_config(data_dir, num_train_steps=4)
    config.keep_checkpoint_steps = (1,)  # Kept although later checkpoints push it out of the latest two.
    run_record.write(str(tmp_path / "parent"), config, {})  # As main.py does: the parent's data settings.
    parent = train.train_and_evaluate(config, str(tmp_path / "parent"), run_evaluation=False)
    manager = checkpoints.create_manager(str(tmp_path / "parent"), max_to_keep=2)
    assert manager.all_steps() == [1, 3, 4]
    manager.close()

    config.init_from, config.init_from_step = str(tmp_path / "parent"), 1
    with caplog.at_level("INFO", logger="absl"):
        branch = train.train_and_evaluate(config, str(tmp_path / "branch"), run_evaluation=False)
    assert f"Started from {tmp_path / 'parent'} at step 1" in caplog.text and "its data position" in caplog.text
    # Steps 2-4 from the parent's step-1 params, Adam moments, RNG and next batches: the parent's run.
    assert int(branch.step) == 4
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(branch.params), jax.device_get(parent.params))
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(branch.opt_state), jax.device_get(parent.opt_state))
    assert sorted(read_events(str(tmp_path / "branch"))["loss/total"]) == [2, 3, 4]

    # Another seed reads other batches: the state carries over, the data starts from the beginning.
    config.seed = 1
    with caplog.at_level("INFO", logger="absl"):
        reseeded = train.train_and_evaluate(config, str(tmp_path / "reseeded"), run_evaluation=False)
    assert "the data from the start" in caplog.text and int(reseeded.step) == 4


def test_a_run_started_from_params_alone_begins_at_step_0_with_those_params(data_dir, tmp_path):
    config = tiny_config(data_dir, num_train_steps=2)
    parent = train.train_and_evaluate(config, str(tmp_path / "parent"), run_evaluation=False)
    imported = str(tmp_path / "imported")  # As `import_torch_checkpoint` writes one: params alone.
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(imported, {"params": jax.device_get(parent.params)})
    for source, params_only in ((imported, False), (str(tmp_path / "parent"), True)):
        config.init_from, config.init_from_params_only, config.num_train_steps = source, params_only, 0
        started = train.train_and_evaluate(config, str(tmp_path / f"from_{params_only}"), run_evaluation=False)
        assert int(started.step) == 0
        jax.tree.map(np.testing.assert_array_equal, jax.device_get(started.params), jax.device_get(parent.params))
        first_moments = jax.tree.leaves(started.opt_state)
        assert all(not np.any(np.asarray(leaf)) for leaf in first_moments if np.ndim(leaf) > 0)  # Fresh Adam.


def test_starting_from_a_missing_step_or_another_model_says_what_to_change(data_dir, tmp_path):
    config = tiny_config(data_dir, num_train_steps=2)
    train.train_and_evaluate(config, str(tmp_path / "parent"), run_evaluation=False)
    config.init_from, config.init_from_step = str(tmp_path / "parent"), 7
    with pytest.raises(FileNotFoundError, match=r"no checkpoint of step 7 .* \(steps there: \[1, 2\]\); set config.init_from_step"):
        train.train_and_evaluate(config, str(tmp_path / "missing"), run_evaluation=False)
    config.init_from_step = None
    config.model.slot_dim = 8
    with pytest.raises(ValueError, match=r"does not fit this run.s model \(params.decoder.conv_0.kernel is"):
        train.train_and_evaluate(config, str(tmp_path / "other_model"), run_evaluation=False)


@pytest.mark.slow  # Moved out of the quick suite (>20 s on 2 cores); CI runs it in the slow command.
def test_several_steps_per_dispatch_match_single_steps_and_resume_on_the_next_batch(data_dir, tmp_path):
    config = tiny_config(data_dir, num_train_steps=6)
    config.log_every_steps = config.checkpoint_every_steps = 3
    single = train.train_and_evaluate(config, str(tmp_path / "single"), run_evaluation=False)
    config.steps_per_dispatch = 3
    config.stop_after_step = 3  # A stop (as after SIGTERM) at a dispatch's end, then a resume.
    train.train_and_evaluate(config, str(tmp_path / "scanned"), run_evaluation=False)
    config.stop_after_step = None
    scanned = train.train_and_evaluate(config, str(tmp_path / "scanned"), run_evaluation=False)
    assert int(scanned.step) == 6
    # The same steps on the same batches: equal up to float32 rounding (XLA orders some sums otherwise
    # in a program of three steps; Adam turns a near-zero gradient's rounding into a whole update, so
    # the bound is on the parameters as a whole), far below what the six steps moved them.
    got, expected, start = (
        np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(jax.device_get(tree))])
        for tree in (scanned.params, single.params, train_state.state_layout(
            build_model(config.model), config, sharding.make_mesh(jax.devices()[:1])
        ).init_state(jax.random.key(config.seed)).params)
    )
    assert np.linalg.norm(got - expected) < 1e-3 * np.linalg.norm(expected - start)
    expected, got = read_events(str(tmp_path / "single")), read_events(str(tmp_path / "scanned"))
    for tag in ("loss/total", "loss/ssync_interior", "optim/l2_grads", "ssync/boundary_fraction"):
        assert sorted(got[tag]) == [3, 6]  # Averages over the same steps, logged at the same steps.
        np.testing.assert_allclose([got[tag][s] for s in (3, 6)], [expected[tag][s] for s in (3, 6)], rtol=1e-5)


@pytest.mark.parametrize(
    "step, expected",
    [(0, 4), (96, 4), (97, 1), (99, 1), (100, 4), (196, 4), (1996, 1), (1997, 1)],
)
def test_a_dispatch_ends_on_every_step_where_the_host_has_work(step, expected):
    # Logs every 100 steps, a kept checkpoint at 1,000 and 1,998; the run stops at 2,000.
    assert train.steps_in_dispatch(step, 2000, every=(100, 0), on=(1000, 1998), limit=4) == expected


def test_a_run_prints_its_step_cost_before_the_first_step_and_the_flops_are_the_convolutions_and_a_bit(
    data_dir, tmp_path, caplog
):
    config = tiny_config(data_dir, num_train_steps=2)
    with caplog.at_level("INFO", logger="absl"):
        train.train_and_evaluate(config, str(tmp_path), run_evaluation=False)
    messages = [record.getMessage() for record in caplog.records]
    cost_at = next(i for i, m in enumerate(messages) if m.startswith("One training step:"))
    assert cost_at < next(i for i, m in enumerate(messages) if "loss/total=" in m)  # Before the first step's scalars.
    assert messages[cost_at + 1].startswith("Memory: parameters") and "optimizer state" in messages[cost_at + 1]
    cost_line = messages[cost_at]
    xla_flops = float(re.search(r"One training step: ([\d.e+-]+) GFLOP", cost_line).group(1)) * 1e9

    # By hand: the multiply-adds of the convolutions, most of this model's work. Encoder: 5x5
    # convolutions with strides; decoder: per slot, 3x3 convolutions on its grid and the readout to
    # 4x4 pixel patches + an alpha. Forward + backward (input and weight gradients) = 3 forwards.
    frames = config.data.global_batch_size * config.data.chunk_length
    size, channels, encoder = config.data.image_size[0], 3, 0
    for width, stride in zip(config.model.encoder.cnn_features, config.model.encoder.cnn_strides):
        size //= stride
        encoder += 2 * size * size * width * 5 * 5 * channels
        channels = width
    side, channels, decoder = config.model.decoder.resolution[0], config.model.slot_dim, 0
    for width in config.model.decoder.features:
        decoder += 2 * side * side * width * 3 * 3 * channels
        channels = width
    decoder += 2 * side * side * channels * (3 * config.model.decoder.patch_size**2 + 1)
    by_hand = 3 * frames * (encoder + config.model.num_slots * decoder)
    assert by_hand < xla_flops < 1.6 * by_hand, (xla_flops, by_hand)


def test_bfloat16_on_a_cpu_without_a_native_bfloat16_product_is_warned_against(data_dir, tmp_path, caplog, monkeypatch):
    from ssync_jax.models import precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    config = tiny_config(data_dir, num_train_steps=0)
    config.model.dtype = "bfloat16"
    with caplog.at_level("WARNING", logger="absl"):
        train.train_and_evaluate(config, str(tmp_path), run_evaluation=False)
    assert "no native bfloat16 product" in caplog.text and "Set both to float32 here" in caplog.text


def test_a_first_ctrl_c_requests_a_save_and_a_second_interrupts_at_once():
    with train._StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # The handler runs at the next bytecode of the main thread.
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Restored on the way out.


def test_resuming_with_another_models_config_names_the_first_parameter_that_differs(data_dir, tmp_path):
    # main.py refuses such a rerun from the workdir's record; a caller of train_and_evaluate meets this.
    workdir = str(tmp_path / "w")
    train.train_and_evaluate(tiny_config(data_dir), workdir, run_evaluation=False)
    changed = tiny_config(data_dir, num_train_steps=3)
    changed.model.slot_dim = 8
    with pytest.raises(errors.ConfigError, match=r"step-2 checkpoint holds another model \(params.decoder.conv_0.kernel "
                       r"is \(3, 3, 16, 8\) in the checkpoint, \(3, 3, 8, 8\) in this model\)"):  # fmt: skip
        train.train_and_evaluate(changed, workdir, run_evaluation=False)
