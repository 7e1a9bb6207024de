"""`main.py` in subprocesses: 8 simulated devices and 2 JAX processes give the params of 1 device;
SIGTERM and Ctrl-C save a checkpoint before exiting and the rerun resumes on the next batch, a second
Ctrl-C stops at once; `--mode eval` writes the metrics JSON.

Each run is a fresh interpreter (device counts are fixed when JAX starts), so these are slow:
about a minute per run on a 2-core CPU.

The comparisons train on 8 distinct videos with a global batch of 8 and flips off: every global
batch then holds each video once (3 frames give one 2-frame chunk each), however the devices and
processes split it, and the loss is invariant to the order of the examples in a batch (SlotContrast's
negatives are the whole batch). A batch that repeated videos would not do: repeated slots are
negatives of themselves, so 1 device with batch 2 is not 8 devices with batch 8.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading

import jax
import numpy as np
import orbax.checkpoint as ocp
import portpicker
import pytest

from ssync_jax import checkpoints
from ssync_jax.data import movi
from tests.tiny_train_config import read_events

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EIGHT_VIDEOS = "synthetic_movi/c_32x32_3frames_train8_validation2_test1"
TIMEOUT_S = 600


def main_command(workdir: str, data_dir: str, *overrides: str) -> list[str]:
    return [
        sys.executable, "main.py", "--config=tests/tiny_train_config.py", f"--workdir={workdir}",
        f"--config.data.name={EIGHT_VIDEOS}", f"--config.data.data_dir={data_dir}",
        "--config.data.flip_prob=0.0", "--config.data.global_batch_size=8", "--logtostderr", *overrides,
    ]  # fmt: skip


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ, JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("XLA_FLAGS", None)
    env.update(extra)
    return env


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-5000:]
    return result


def final_state(workdir: str, like: dict | None = None) -> dict:
    """The latest checkpoint's train state as numpy, restored onto this process's one device.

    Args:
        workdir: the run's workdir.
        like: a state restored from a 1-device checkpoint, giving the structure for checkpoints
            written by other topologies (orbax needs a target to re-lay them out).
    """
    target = None
    if like is not None:
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), like)
    manager = checkpoints.create_manager(workdir, max_to_keep=2)
    try:
        restored = manager.restore(
            manager.latest_step(), args=ocp.args.Composite(state=ocp.args.StandardRestore(target))
        )
    finally:
        manager.close()
    return jax.device_get(restored["state"])


def assert_same_training(workdir: str, reference_workdir: str) -> None:
    """Same logged losses and gradient norms at steps 1 and 2, same params after step 2 (<= 1e-5)."""
    expected_events, got_events = read_events(reference_workdir), read_events(workdir)
    for tag in ("loss/total", "loss/reconstruction", "optim/l2_grads"):
        for step in (1, 2):
            np.testing.assert_allclose(got_events[tag][step], expected_events[tag][step], rtol=1e-5, err_msg=tag)
    expected = final_state(reference_workdir)
    got = final_state(workdir, like=expected)
    assert int(got["step"]) == int(expected["step"]) == 2
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), got["params"], expected["params"])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    directory = str(tmp_path_factory.mktemp("tfds"))
    for split in ("train", "validation"):
        movi.data_source(EIGHT_VIDEOS, split, directory)
    return directory


@pytest.fixture(scope="module")
def one_device(data_dir, tmp_path_factory) -> str:
    workdir = str(tmp_path_factory.mktemp("one_device"))
    run(main_command(workdir, data_dir, "--mode=train"), environment())
    return workdir


def test_eight_simulated_devices_give_the_params_of_one_after_two_steps(data_dir, one_device, tmp_path):
    env = environment(XLA_FLAGS="--xla_force_host_platform_device_count=8")
    result = run(main_command(str(tmp_path), data_dir, "--mode=train"), env)
    assert "1 processes, 8 devices" in result.stderr
    assert_same_training(str(tmp_path), one_device)


def test_two_jax_processes_give_the_params_of_one(data_dir, one_device, tmp_path):
    address = f"127.0.0.1:{portpicker.pick_unused_port()}"
    env = environment(JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo", JAX_NUM_CPU_DEVICES="1")
    processes = [
        subprocess.Popen(
            main_command(
                str(tmp_path), data_dir, "--mode=train", f"--coordinator_address={address}",
                "--num_processes=2", f"--process_id={index}",
            ),  # fmt: skip
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for index in range(2)
    ]
    outputs = [process.communicate(timeout=TIMEOUT_S) for process in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-5000:]
    assert "2 processes, 2 devices" in outputs[0][1]
    assert_same_training(str(tmp_path), one_device)


def _interrupted(command: list[str], signum: int, after_steps: int, again_on: str | None = None) -> tuple[int, str, list[int]]:
    """Runs `command`, sends `signum` once `after_steps` steps were logged (and once more when a line
    holds `again_on`); returns the exit status, stderr and the logged steps."""
    process = subprocess.Popen(command, cwd=REPO, env=environment(), stderr=subprocess.PIPE, text=True)
    logged_steps, lines = [], []

    def read_stderr():
        for line in process.stderr:
            lines.append(line)
            match = re.search(r"\[(\d+)\] .*loss/total", line)
            if match:
                logged_steps.append(int(match.group(1)))
                if len(logged_steps) == after_steps:
                    process.send_signal(signum)
            if again_on is not None and again_on in line:
                process.send_signal(signum)

    reader = threading.Thread(target=read_stderr)
    reader.start()
    process.wait(timeout=TIMEOUT_S)
    reader.join()
    return process.returncode, "".join(lines), logged_steps


def _saved_steps(workdir: str) -> list[int]:
    manager = checkpoints.create_manager(workdir, max_to_keep=2)
    try:
        return manager.all_steps()
    finally:
        manager.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stop_signal_saves_after_the_step_and_the_rerun_ends_on_the_uninterrupted_params(data_dir, tmp_path, signum):
    steps = ("--mode=train", "--config.num_train_steps=40", "--config.checkpoint_every_steps=100000")
    uninterrupted = str(tmp_path / "uninterrupted")
    run(main_command(uninterrupted, data_dir, *steps), environment())
    workdir = str(tmp_path / "interrupted")

    status, stderr, logged_steps = _interrupted(main_command(workdir, data_dir, *steps), signum, after_steps=3)

    assert status == 0 and "Traceback" not in stderr, stderr[-3000:]
    assert "saving a checkpoint after this step, then stopping" in stderr
    saved = _saved_steps(workdir)
    # The step running when the signal came is finished, saved, and is the last one taken.
    assert len(saved) == 1 and 3 <= saved[0] < 40 and max(logged_steps) == saved[0]
    rerun = run(main_command(workdir, data_dir, *steps), environment())
    assert f"Resumed from step {saved[0]}" in rerun.stderr
    expected, got = final_state(uninterrupted), final_state(workdir)
    assert int(got["step"]) == int(expected["step"]) == 40
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), got["params"], expected["params"])


def test_a_second_ctrl_c_stops_at_once_in_one_line_and_keeps_the_last_checkpoint(data_dir, tmp_path):
    # The first Ctrl-C comes as step 5 is logged, just before its evaluation (which compiles for
    # seconds); the second as soon as the first is acknowledged, inside that evaluation.
    command = main_command(str(tmp_path), data_dir, "--mode=train_and_eval", "--config.num_train_steps=100000",
                           "--config.checkpoint_every_steps=2", "--config.eval_every_steps=5")  # fmt: skip

    status, stderr, _ = _interrupted(command, signal.SIGINT, after_steps=5, again_on="Ctrl-C again stops at once")

    assert status == 130 and "Traceback" not in stderr, stderr[-3000:]
    assert stderr.rstrip().splitlines()[-1] == "Interrupted (Ctrl-C)."
    assert _saved_steps(str(tmp_path)) == [2, 4]  # Step 5 was not saved: nothing after the last good one.
    assert int(final_state(str(tmp_path))["step"]) == 4


def test_eval_mode_writes_the_metrics_json_of_the_latest_checkpoint(data_dir, one_device):
    os.remove(os.path.join(one_device, "config.json"))
    run(main_command(one_device, data_dir, "--mode=eval"), environment())
    with open(os.path.join(one_device, "eval_metrics.json")) as file:
        results = json.load(file)
    assert results["step"] == 2 and results["num_videos"] == 2
    assert 0.0 <= results["video_mbo"] <= 1.0 and -1.0 <= results["video_fg_ari"] <= 1.0
    assert os.path.exists(os.path.join(one_device, "config.json"))


def test_eval_mode_overrides_go_to_eval_config_and_leave_the_runs_config_json(data_dir, one_device):
    with open(os.path.join(one_device, "config.json")) as file:
        trained_with = file.read()
    run(main_command(one_device, data_dir, "--mode=eval", "--config.data.eval_split=train"), environment())
    with open(os.path.join(one_device, "config.json")) as file:
        assert file.read() == trained_with
    with open(os.path.join(one_device, "eval_config.json")) as file:
        assert json.load(file)["data"]["eval_split"] == "train"
    with open(os.path.join(one_device, "eval_metrics.json")) as file:
        assert json.load(file)["step"] == 2
