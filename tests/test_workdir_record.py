"""A workdir is a record: a rerun that would change the run is refused before any work, leaving every
file as it was; a resume may change the loop's cadences, recorded beside the config, never over it."""

import hashlib
import json
import os
import pathlib

import pytest

from configs import synthetic
from ssync_jax import errors, run_record
from ssync_jax.data import movi
from tests import tiny_train_config
from tests.test_main import assert_one_error_line, run_main

pytestmark = pytest.mark.usefixtures("compilation_cache")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    directory = str(tmp_path_factory.mktemp("tfds"))
    for split in ("train", "validation"):
        movi.data_source(tiny_train_config.DATASET, split, directory)
    return directory


def tiny_run(workdir: str, data_dir: str, *overrides: str):
    return run_main("--config=tests/tiny_train_config.py", f"--workdir={workdir}", "--mode=train",
                    f"--config.data.data_dir={data_dir}", *overrides)  # fmt: skip


def fingerprint(workdir: str) -> dict[str, str]:
    """{relative path: sha256} of every file under the workdir."""
    root = pathlib.Path(workdir)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def stopped_run(data_dir, tmp_path_factory) -> str:
    """A tiny run stopped after step 1 of 2, with its checkpoint."""
    workdir = str(tmp_path_factory.mktemp("record") / "run")
    result = tiny_run(workdir, data_dir, "--config.stop_after_step=1")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


@pytest.mark.parametrize(
    "override, named",
    [
        ("--config.model.slot_dim=8", r"model.slot_dim \(16 -> 8\)"),
        ("--config.num_train_steps=5", r"num_train_steps \(2 -> 5\)"),
        ("--config.optimizer.learning_rate=0.1", r"optimizer.learning_rate \(0.0006 -> 0.1\)"),
        ("--config.data.global_batch_size=4", r"data.global_batch_size \(2 -> 4\)"),
    ],
)
def test_a_rerun_that_would_change_the_run_is_refused_in_one_line_and_touches_nothing(
    stopped_run, data_dir, override, named
):
    before = fingerprint(stopped_run)
    result = tiny_run(stopped_run, data_dir, override)
    assert_one_error_line(result, f"is the record of a run with another config: {named}.*--config.init_from=")
    assert fingerprint(stopped_run) == before


def test_a_resume_may_change_cadences_and_records_them_beside_the_unchanged_config(stopped_run, data_dir):
    with open(os.path.join(stopped_run, run_record.CONFIG_FILE), "rb") as file:
        recorded = file.read()
    result = tiny_run(stopped_run, data_dir, "--config.stop_after_step=2", "--config.log_every_steps=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resumed from step 1" in result.stderr
    with open(os.path.join(stopped_run, run_record.CONFIG_FILE), "rb") as file:
        assert file.read() == recorded
    with open(os.path.join(stopped_run, run_record.CHANGES_FILE)) as file:
        (line,) = [json.loads(text) for text in file]
    assert line["changes"] == {"log_every_steps": {"was": 1, "now": 2}, "stop_after_step": {"was": 1, "now": 2}}


def test_keys_only_one_side_has_come_from_another_version_of_the_code_and_pass(tmp_path):
    config = synthetic.get_config()
    workdir = tmp_path / "old"
    (workdir / run_record.CHECKPOINTS_DIR / "10").mkdir(parents=True)
    old = json.loads(config.to_json_best_effort())
    del old["model"]["encoder"]["token_norm"]  # A workdir written before the key existed.
    (workdir / run_record.CONFIG_FILE).write_text(json.dumps(old))
    assert run_record.check(str(workdir), config) == {"model.encoder.token_norm": ("(not set)", "none")}
    config.model.num_slots = 3
    with pytest.raises(errors.ConfigError, match=r"model.num_slots \(7 -> 3\)"):
        run_record.check(str(workdir), config)


def test_without_a_checkpoint_there_is_nothing_to_protect_and_an_evaluation_keeps_the_model(tmp_path):
    config = synthetic.get_config()
    workdir = str(tmp_path / "fresh")
    run_record.write(workdir, config, {})
    config.model.num_slots = 3
    assert run_record.check(workdir, config) == {}  # No checkpoint: the config is written afresh.
    (tmp_path / "fresh" / run_record.CHECKPOINTS_DIR / "1").mkdir(parents=True)
    config.model.num_slots = 7
    config.data.eval_split = "test"
    assert set(run_record.check(workdir, config, evaluation=True)) == {"data.eval_split"}
    config.model.num_slots = 3
    with pytest.raises(errors.ConfigError, match="model.num_slots"):
        run_record.check(workdir, config, evaluation=True)
