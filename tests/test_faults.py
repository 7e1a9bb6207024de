"""Nothing is lost: a run killed at any moment, a damaged checkpoint, a disk that fills up.

Each fault is followed by a rerun of the same command, which must end where an uninterrupted run
ends, or say in one line what is wrong. (Ctrl-C and SIGTERM: tests/test_train_processes.py; a
changed config refused with the workdir untouched: tests/test_workdir_record.py.)
"""

import os
import re
import signal
import subprocess
import uuid

import jax
import numpy as np
import pytest

from ssync_jax import errors, train
from tests import tiny_train_config
from tests.test_train_processes import REPO, TIMEOUT_S, data_dir, environment, final_state, main_command, run  # noqa: F401

pytestmark = pytest.mark.slow
STEPS = ("--mode=train", "--config.num_train_steps=30", "--config.checkpoint_every_steps=5")


def _killed(command: list[str], at_step: int) -> int:
    """Runs `command` and kills it (SIGKILL: no handler runs) as soon as step `at_step` is logged;
    returns the last step logged."""
    process = subprocess.Popen(command, cwd=REPO, env=environment(), stderr=subprocess.PIPE, text=True)
    last = 0
    for line in process.stderr:
        match = re.search(r"\[(\d+)\] .*loss/total", line)
        if match:
            last = int(match.group(1))
            if last >= at_step:
                process.send_signal(signal.SIGKILL)
                break
    process.stderr.close()
    process.wait(timeout=TIMEOUT_S)
    return last


def test_kill_9_at_any_moment_then_rerunning_ends_on_the_uninterrupted_params(data_dir, tmp_path):  # noqa: F811
    reference = str(tmp_path / "uninterrupted")
    run(main_command(reference, data_dir, *STEPS), environment())
    workdir = str(tmp_path / "killed")
    command = main_command(workdir, data_dir, *STEPS)
    # Mid-interval; as step 10 is logged, its checkpoint being written in the background; just after a
    # resume (from 10); as step 20's checkpoint is written.
    for moment in (3, 10, 12, 20):
        assert _killed(command, moment) >= moment
    run(command, environment())
    expected, got = final_state(reference), final_state(workdir)
    assert int(got["step"]) == int(expected["step"]) == 30
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(got["params"]), jax.tree.leaves(expected["params"])):
        np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))


@pytest.fixture
def tiny(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("tfds"))
    config = tiny_train_config.get_config()
    config.data.data_dir = directory
    config.num_train_steps = 6
    config.max_checkpoints_to_keep = 5
    return config


def _damage(workdir: str, step: int) -> None:
    """Truncates the largest file of a checkpoint, as a write cut short would leave it."""
    files = [os.path.join(root, name) for root, _, names in os.walk(os.path.join(workdir, "checkpoints", str(step)))
             for name in names]  # fmt: skip
    largest = max(files, key=os.path.getsize)
    with open(largest, "r+b") as file:
        file.truncate(100)


def test_a_damaged_latest_checkpoint_is_kept_aside_and_the_run_resumes_from_the_one_before(tiny, tmp_path, caplog):
    workdir = str(tmp_path / "w")
    tiny.stop_after_step = 4
    train.train_and_evaluate(tiny, workdir, run_evaluation=False)
    _damage(workdir, 4)
    tiny.stop_after_step = None
    with caplog.at_level("INFO", logger="absl"):
        state = train.train_and_evaluate(tiny, workdir, run_evaluation=False)
    assert int(state.step) == 6
    messages = [record.getMessage() for record in caplog.records]
    assert any(re.match(r"Checkpoint 4 cannot be read back \(.*\); kept as .*unreadable_4, resuming from step 3", m)
               for m in messages), messages  # fmt: skip
    assert any("Resumed from step 3" in m for m in messages)
    assert os.path.isdir(os.path.join(workdir, "checkpoints", "unreadable_4"))  # Nothing deleted.


def test_when_no_checkpoint_reads_back_the_run_refuses_rather_than_start_again(tiny, tmp_path):
    workdir = str(tmp_path / "w")
    tiny.stop_after_step = 2
    train.train_and_evaluate(tiny, workdir, run_evaluation=False)
    for step in (1, 2):
        _damage(workdir, step)
    tiny.stop_after_step = None
    with pytest.raises(errors.ConfigError, match=r"No checkpoint in .* reads back; the latest, step 2"):
        train.train_and_evaluate(tiny, workdir, run_evaluation=False)
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "2"]  # Left as they were.


def test_a_full_disk_during_a_checkpoint_write_is_one_line_and_the_rerun_resumes(data_dir, tmp_path):  # noqa: F811
    # A 1.2 MB tmpfs holds the run's first two checkpoints (~0.45 MB each) and not the third.
    mount_point = tmp_path / f"disk_{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()})")
    try:
        workdir = str(mount_point / "w")
        command = main_command(workdir, data_dir, "--mode=train", "--config.num_train_steps=8",
                               "--config.checkpoint_every_steps=1", "--config.max_checkpoints_to_keep=5")  # fmt: skip
        failed = subprocess.run(command, cwd=REPO, env=environment(), capture_output=True, text=True, timeout=TIMEOUT_S)
        assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr[-3000:]
        lines = [line for line in failed.stderr.splitlines() if not line.startswith("I")]
        assert len(lines) == 1 and re.match(r"Error: Could not write a checkpoint in .*: no space left on the device\. "
                                            r"The last complete one is step (\d+)", lines[0]), lines  # fmt: skip
        last = int(re.search(r"step (\d+)", lines[0]).group(1))
        subprocess.run(["mount", "-o", "remount,size=20M", str(mount_point)], check=True)
        resumed = run(command, environment())
        assert f"Resumed from step {last}" in resumed.stderr
        assert int(final_state(workdir)["step"]) == 8
    finally:
        subprocess.run(["umount", str(mount_point)], capture_output=True)
