"""Checkpoints: the data position travels with the state; keep-latest plus keep-best-by-FG-ARI."""

import json
import os

import grain
import numpy as np

from ssync_jax import checkpoints


def tiny_state(step: int) -> dict:
    return {"step": np.array(step, np.int32), "params": {"w": np.full((2, 3), float(step), np.float32)}}


def test_restore_returns_the_state_and_moves_the_iterator_to_the_saved_position(tmp_path):
    iterator = iter(grain.MapDataset.range(100).to_iter_dataset())
    for _ in range(7):
        next(iterator)
    manager = checkpoints.create_manager(str(tmp_path), max_to_keep=2)
    checkpoints.save(manager, 7, tiny_state(7), iterator)
    manager.wait_until_finished()
    next(iterator)  # Moves on after the save; the restore must not see this.

    fresh = iter(grain.MapDataset.range(100).to_iter_dataset())
    state = checkpoints.restore(manager, tiny_state(0), fresh)
    manager.close()
    assert int(state["step"]) == 7
    np.testing.assert_array_equal(state["params"]["w"], np.full((2, 3), 7.0))
    assert next(fresh) == 7


def test_restore_without_checkpoint_returns_none(tmp_path):
    manager = checkpoints.create_manager(str(tmp_path), max_to_keep=2)
    assert checkpoints.restore(manager, tiny_state(0), None) is None
    manager.close()


def test_keeps_the_latest_and_the_best_fg_ari_checkpoints(tmp_path):
    manager = checkpoints.create_manager(str(tmp_path), max_to_keep=1, keep_best=1, asynchronous=False)
    fg_ari = {1: 0.5, 2: 0.9, 3: 0.3, 4: 0.4}
    for step, value in fg_ari.items():
        checkpoints.save(manager, step, tiny_state(step), None, {"video_fg_ari": value, "video_mbo": 0.1})
    checkpoints.save(manager, 5, tiny_state(5), None)  # Between evaluations: no metrics.
    assert manager.all_steps() == [2, 5]  # Best FG-ARI (step 2) and the latest.
    manager.close()


def test_relative_workdir_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert checkpoints.checkpoint_dir("run") == str(tmp_path / "run" / "checkpoints")


def test_evaluations_make_a_learning_curve_that_a_resumed_run_rewrites_from_its_step(tmp_path):
    workdir = str(tmp_path)
    for step, value in ((10, 0.1), (20, 0.2), (30, 0.3)):
        checkpoints.write_evaluation(workdir, {"video_fg_ari": value}, step, history=True)
    assert [r["step"] for r in checkpoints.read_evaluations(workdir)] == [10, 20, 30]
    # Resumed from the step-20 checkpoint: its evaluation at 20 replaces the lost run's 20 and 30.
    checkpoints.write_evaluation(workdir, {"video_fg_ari": 0.25}, 20, history=True)
    assert checkpoints.read_evaluations(workdir) == [
        {"step": 10, "video_fg_ari": 0.1},
        {"step": 20, "video_fg_ari": 0.25},
    ]
    checkpoints.write_evaluation(workdir, {"video_fg_ari": 0.9}, 20, history=False)  # --mode eval
    assert len(checkpoints.read_evaluations(workdir)) == 2
    with open(os.path.join(workdir, checkpoints.EVAL_JSON)) as file:
        assert json.load(file) == {"step": 20, "video_fg_ari": 0.9}
