"""The model shipped with the package (ssync_jax/pretrained/default): small, the default recipe, still
giving the figures recorded beside it, and usable by the tools right after install, with no flag
naming a workdir."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from configs import synthetic as default_config
from ssync_jax import checkpoints, evaluate, inference, sharding, video_io
from ssync_jax.data import synthetic, synthetic_movi

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = checkpoints.SHIPPED_MODEL


@pytest.fixture(scope="module")
def info() -> dict:
    return checkpoints.read_model_info(SHIPPED)


@pytest.fixture(scope="module")
def predictor() -> inference.Predictor:
    return inference.load()  # No argument: the shipped model.


def test_the_shipped_model_is_a_few_megabytes_of_the_default_recipe(info):
    size = sum(os.path.getsize(os.path.join(SHIPPED, name)) for name in os.listdir(SHIPPED))
    assert size <= 5 * 2**20, f"{size / 2**20:.2f} MiB"
    # Its config is today's configs/synthetic.py: a changed default recipe must ship a retrained model.
    shipped = json.loads(json.dumps(checkpoints.read_config(SHIPPED).to_dict(), default=list))
    today = json.loads(json.dumps(default_config.get_config().to_dict(), default=list))
    assert shipped == today
    assert info["step"] == today["num_train_steps"]
    assert info["test_metrics"]["video_fg_ari"] >= 0.5  # Issue 21's bar for the default, held-out.


def test_the_shipped_model_gives_its_recorded_metrics_on_the_generated_test_split(info, predictor, tmp_path):
    check = info["check"]
    config = predictor.config.copy_and_resolve_references()
    # The same test videos without generating the training split: a split's videos depend on the
    # split and their index alone (synthetic_movi.split_seeds), not on the other splits' sizes.
    dataset, variant = check["dataset"].split("/")
    config.data.name = f"{dataset}/{variant}_train1_validation1"
    config.data.data_dir = str(tmp_path)
    config.data.eval_split = check["split"]
    mesh = sharding.make_mesh(jax.local_devices()[:1])
    params = jax.device_put(predictor.params, sharding.replicated(mesh))
    got = evaluate.Evaluator(predictor.model, config, mesh).evaluate(params, evaluate.evaluation_dataset(config))
    assert got["num_videos"] == check["metrics"]["num_videos"]
    for name, recorded in check["metrics"].items():
        # Floating point only: a CPU with other vector instructions may flip a few pixels' argmax.
        assert got[name] == pytest.approx(recorded, abs=1e-3), name


def test_predict_without_a_workdir_segments_a_video_file_with_the_shipped_model(info, predictor, tmp_path):
    name = synthetic_movi.make_config(info["check"]["dataset"].split("/")[1])
    example = synthetic.generate_video(name.scene_spec(), synthetic_movi.split_seeds("test", 1)[0])
    clip = tmp_path / "clip.mp4"
    video_io.write_video(clip, example["video"])
    out = tmp_path / "out"
    command = [sys.executable, "-m", "ssync_jax.tools.predict", f"--input={clip}", f"--out={out}"]
    result = subprocess.run(command, cwd=REPO, env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(out / "masks.npz") as saved:
        masks = saved["masks"]
    # What the Python API gives on the same decoded file.
    np.testing.assert_array_equal(masks, predictor.predict(video_io.read_video(clip)).masks)
    # And it finds the objects: foreground ARI of the video against the generator's labels (sklearn).
    labels = np.asarray(example["segmentations"]).reshape(masks.shape)
    foreground = labels > 0
    assert adjusted_rand_score(labels[foreground], masks[foreground]) > 0.3


def test_the_protocol_table_scores_the_shipped_model_when_given_nothing_else(info, predictor):
    from ssync_jax.tools import score as protocols

    mesh = sharding.make_mesh(jax.local_devices()[:1])
    _, params, config, step = protocols.load_from_flags(None, None, None, None, mesh)
    assert step == info["step"] and config.data.name == info["check"]["dataset"]
    for got, expected in zip(jax.tree.leaves(params), jax.tree.leaves(predictor.params), strict=True):
        np.testing.assert_array_equal(got, expected)
