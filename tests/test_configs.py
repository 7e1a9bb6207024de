"""Every shipped config and study config (studies/configs/), each variant, builds its whole train step at
its own shapes and takes a real step.

At the config's own sizes (336² and a global batch of 128 for the paper configs) the train step is
traced abstractly (`jax.eval_shape`): every shape of the recipe must fit (a decoder that
reconstructs the wrong layout, a loss group that does not divide the batch, a grid mismatch fail
here). Then one real step runs at tiny sizes: the same recipe with a 4-clip batch of 2 frames
(DINOv2 configs: a 2-block DINOv2 at 28²), which must give finite losses and move the params.
"""

import importlib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssync_jax import sharding, train_state
from ssync_jax.models import build_model, dinov2

REPO = Path(__file__).resolve().parents[1]
# The recipes (configs/) and the study configs (studies/configs/): each file's module, by its name.
MODULES = {
    path.stem: ".".join(path.relative_to(REPO).with_suffix("").parts)
    for folder in ("configs", "studies/configs")
    for path in (REPO / folder).glob("*.py")
    if "def get_config" in path.read_text()
}
CONFIGS = sorted(MODULES)
# Every variant a config file names in its VARIANTS (default: SSync on and off).
RECIPES = [
    (name, variant)
    for name in CONFIGS
    for variant in getattr(importlib.import_module(MODULES[name]), "VARIANTS", ("ssync", "base"))
]
TINY_DINOV2 = "vit_test_tiny"

pytestmark = pytest.mark.usefixtures("compilation_cache")


def load(name: str, variant: str):
    config = importlib.import_module(MODULES[name]).get_config(variant)
    if config.model.encoder.backbone == "dinov2":
        config.model.encoder.weights = None  # No download: random backbone weights.
    return config


def test_the_shipped_configs_are_found():
    assert set(CONFIGS) >= {"synthetic", "synthetic16", "movi_c", "movi_e", "savi_movi_c"}
    # studies/configs/synthetic16.py's four variants (losses x decoder) each build and take a step below.
    assert {variant for name, variant in RECIPES if name == "synthetic16"} == {"base,sb", "base,mlp", "ssync,sb", "ssync,mlp"}


def _step_and_state(config):
    model = build_model(config.model)
    layout = train_state.state_layout(model, config, sharding.make_mesh(jax.devices()[:1]))
    return train_state.make_train_step(model, layout.tx, layout.schedule, config), layout


@pytest.mark.parametrize("name, variant", RECIPES)
def test_config_traces_its_whole_train_step_at_its_own_shapes(name, variant):
    config = load(name, variant)
    step, layout = _step_and_state(config)
    video = jax.ShapeDtypeStruct(
        (config.data.global_batch_size, config.data.chunk_length, *config.data.image_size, 3), jnp.float32
    )
    new_state, scalars = jax.eval_shape(step, layout.abstract, {"video": video})
    assert jax.tree.map(lambda a, b: a.shape == b.shape, new_state.params, layout.abstract.params)
    assert set(scalars) >= {f"loss/{name}" for name in config.losses} | {"loss/total"}


@pytest.fixture(scope="module", autouse=True)
def tiny_dinov2():
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(dinov2.VARIANTS, TINY_DINOV2, (32, 2, 2))
        yield


def tiny(config):
    """The recipe at tiny sizes: batch 4 of 2 frames, a 2-block DINOv2 at 28², a narrower decoder."""
    config.data.global_batch_size = 4
    config.data.chunk_length = 2
    if config.loss_group_size:
        config.loss_group_size = 2
    if config.model.encoder.backbone == "dinov2":
        config.model.encoder.dinov2_variant = TINY_DINOV2
        config.data.image_size = (28, 28)  # The model's follows: one FieldReference.
        config.model.decoder.hidden_sizes = (32, 32, 32)
    return config


@pytest.mark.parametrize("name, variant", RECIPES)
def test_config_takes_a_real_training_step_at_tiny_sizes(name, variant):
    config = tiny(load(name, variant))
    config.num_train_steps = 10  # SSync's warm-up ends at step 3: the step below runs every term.
    config.optimizer.warmup_steps = 0  # The optimizer counts its own steps from 0: a full learning rate.
    step, layout = _step_and_state(config)
    state = jax.jit(layout.init_state)(jax.random.key(0)).replace(step=jnp.int32(5))
    video = jax.random.uniform(jax.random.key(1), (4, 2, *config.data.image_size, 3))
    new_state, scalars = jax.jit(step)(state, {"video": video})
    assert all(np.isfinite(float(value)) for value in scalars.values()), scalars
    if variant.startswith("ssync"):
        assert float(scalars["ssync_boundary/active"]) == 1.0
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new_state.params["processor"], state.params["processor"])
    assert all(jax.tree.leaves(moved))
