"""A run on another run's trained backbone (`config.model.encoder.backbone_from`): only the backbone
is taken, from a workdir (any of its steps), a model directory or a params checkpoint; frozen, it
never moves; a backbone of another shape, or a frozen CNN with nothing to take, is refused."""

import os
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import traverse_util

from ssync_jax import checkpoints, errors, train
from ssync_jax.data import movi
from tests import tiny_train_config
from tests.test_main import REPO, assert_one_error_line

pytestmark = pytest.mark.usefixtures("compilation_cache")


def tiny_config(data_dir: str, **encoder):
    config = tiny_train_config.get_config()
    config.data.data_dir = data_dir
    config.model.encoder.update(encoder)
    return config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    directory = str(tmp_path_factory.mktemp("tfds"))
    for split in ("train", "validation"):
        movi.data_source(tiny_train_config.DATASET, split, directory)
    return directory


@pytest.fixture(scope="module")
def source(data_dir, tmp_path_factory):
    """Stage 1: a run whose CNN trains for 2 steps (checkpoints at steps 1 and 2)."""
    workdir = str(tmp_path_factory.mktemp("source"))
    config = tiny_config(data_dir)
    config.seed = 7
    train.train_and_evaluate(config, workdir, run_evaluation=False)
    return config, workdir


def saved_params(workdir: str, step: int) -> dict:
    return checkpoints.read_params(workdir, step)


def flat(tree: dict) -> dict:
    return traverse_util.flatten_dict(jax.device_get(tree), sep="/")


def assert_same_tree(ours: dict, theirs: dict) -> None:
    ours, theirs = flat(ours), flat(theirs)
    assert set(ours) == set(theirs)
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


def test_a_frozen_backbone_from_a_workdir_step_is_that_steps_exactly_and_the_rest_trains_afresh(
    source, data_dir, tmp_path
):
    _, source_dir = source
    at_1, at_2 = saved_params(source_dir, 1), saved_params(source_dir, 2)
    moved = flat(at_1["encoder"]["backbone"])["conv_0/kernel"] - flat(at_2["encoder"]["backbone"])["conv_0/kernel"]
    assert np.abs(moved).max() > 0  # The source's CNN trains: its steps differ.
    config = tiny_config(data_dir, freeze_backbone=True, backbone_from=source_dir, backbone_from_step=1)
    state = train.train_and_evaluate(config, str(tmp_path / "stage2"), run_evaluation=False)

    assert_same_tree(state.params["encoder"]["backbone"], at_1["encoder"]["backbone"])
    # Nothing else is taken: the slot modules and decoder start from this run's own seed.
    fresh = flat(state.params["decoder"])["readout/kernel"] - flat(at_1["decoder"])["readout/kernel"]
    assert np.abs(fresh).max() > 1e-3


def test_a_model_directory_and_a_params_checkpoint_give_their_backbone(source, data_dir, tmp_path):
    source_config, source_dir = source
    params = saved_params(source_dir, 2)
    model_dir = str(tmp_path / "model")
    checkpoints.write_model_dir(model_dir, source_config, params, {"step": 2})
    params_checkpoint = str(tmp_path / "params")
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(params_checkpoint, {"params": params})
    for name, path in (("from_model_dir", model_dir), ("from_params", params_checkpoint)):
        config = tiny_config(data_dir, freeze_backbone=True, backbone_from=path)
        config.num_train_steps = 1
        state = train.train_and_evaluate(config, str(tmp_path / name), run_evaluation=False)
        assert_same_tree(state.params["encoder"]["backbone"], params["encoder"]["backbone"])


def test_a_backbone_of_another_shape_is_refused_naming_the_parameter_and_both_shapes(source, data_dir, tmp_path):
    _, source_dir = source
    config = tiny_config(data_dir, freeze_backbone=True, backbone_from=source_dir, cnn_features=(16, 8))
    with pytest.raises(errors.ConfigError, match=r"encoder/backbone/conv_0/bias is \(8,\) there, \(16,\) here"):
        train.train_and_evaluate(config, str(tmp_path / "misfit"), run_evaluation=False)


def test_a_frozen_cnn_with_no_trained_backbone_to_take_is_refused(data_dir, tmp_path):
    config = tiny_config(data_dir, freeze_backbone=True)
    with pytest.raises(errors.ConfigError, match="randomly initialised savi_cnn.*backbone_from=WORKDIR"):
        train.train_and_evaluate(config, str(tmp_path / "random"), run_evaluation=False)


def test_a_missing_source_or_step_is_one_line_naming_what_is_there(source, data_dir, tmp_path):
    _, source_dir = source
    config = tiny_config(data_dir, freeze_backbone=True, backbone_from=source_dir, backbone_from_step=5)
    with pytest.raises(errors.InputNotFoundError, match=r"No checkpoint of step 5 .*steps there: \[1, 2\]"):
        train.train_and_evaluate(config, str(tmp_path / "nostep"), run_evaluation=False)
    config = tiny_config(data_dir, freeze_backbone=True, backbone_from=str(tmp_path / "nowhere"))
    with pytest.raises(errors.InputNotFoundError, match="nowhere"):
        train.train_and_evaluate(config, str(tmp_path / "nosource"), run_evaluation=False)


@pytest.mark.slow  # Moved out of the quick suite (>20 s on 2 cores); CI runs it in the slow command.
def test_the_command_line_takes_the_backbone_from_another_run(source, data_dir, tmp_path):
    _, source_dir = source
    workdir = str(tmp_path / "cli")
    common = [
        sys.executable, "main.py", "--config=tests/tiny_train_config.py", f"--workdir={workdir}", "--mode=train",
        f"--config.data.data_dir={data_dir}", "--config.num_train_steps=1", "--config.model.encoder.freeze_backbone=True",
    ]  # fmt: skip
    result = subprocess.run(
        [*common, f"--config.model.encoder.backbone_from={source_dir}", "--config.model.encoder.backbone_from_step=2"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert checkpoints.read_config(workdir).model.encoder.backbone_from == source_dir
    assert_same_tree(saved_params(workdir, 1)["encoder"]["backbone"], saved_params(source_dir, 2)["encoder"]["backbone"])
    # Without the source, the frozen CNN is refused in one line, with the flag to use.
    result = subprocess.run([*common[:3], f"--workdir={workdir}_none", *common[4:]], cwd=REPO, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert_one_error_line(result, "backbone_from=WORKDIR")
    assert not os.path.exists(os.path.join(workdir + "_none", "checkpoints", "1"))
