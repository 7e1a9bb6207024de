"""Parameter counts equal those of the authors' PyTorch models (SSync code, MOVi-C and MOVi-E configs).

The one documented difference: PyTorch's GRU has an input and a hidden bias for each of its three
gates; Flax's GRUCell has no hidden bias for the reset and update gates (the two biases of a gate
only ever appear as a sum, so the functions are the same). Ours has 2·D fewer corrector parameters.
"""

import jax
import jax.numpy as jnp
import pytest

from ssync_jax.models import build_model
from tests.model_configs import dinov2_model

# Counted by the authors' code at slot dim 64, 11 slots, ViT-S/14 at 336².
MOVI_C_AUTHORS = {
    "initializer": 704,
    "output_transform": 345_664,
    "corrector": 70_720,
    "predictor": 49_984,
    "decoder": 2_597_249,
}


def count(tree) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(tree))


def parameter_shapes(config):
    model = build_model(config)
    video = jax.ShapeDtypeStruct((1, 1, *config.image_size, 3), jnp.float32)
    return jax.eval_shape(lambda v: model.init(jax.random.key(0), v), video)["params"]


@pytest.fixture(scope="module")
def movi_c():
    return parameter_shapes(dinov2_model("vit_s14", num_slots=11, slot_dim=64))


def torch_gru_extra(slot_dim: int) -> int:
    return 2 * slot_dim


def test_movi_c_parts_match_the_authors(movi_c):
    ours = {
        "initializer": count(movi_c["initializer"]),
        "output_transform": count(movi_c["encoder"]["output_transform"]),
        "corrector": count(movi_c["processor"]["corrector"]) + torch_gru_extra(64),
        "predictor": count(movi_c["processor"]["predictor"]),
        "decoder": count(movi_c["decoder"]),
    }
    assert ours == MOVI_C_AUTHORS


def test_movi_c_trainable_total_is_3_064_321_with_the_gru_biases(movi_c):
    trainable = count(movi_c) - count(movi_c["encoder"]["backbone"])
    assert trainable + torch_gru_extra(64) == 3_064_321


def test_frozen_vit_s14_has_22_055_424_parameters(movi_c):
    assert count(movi_c["encoder"]["backbone"]) == 22_055_424


def test_decoder_position_embedding_covers_the_24x24_patches(movi_c):
    assert movi_c["decoder"]["pos_emb"].shape == (576, 64)


def test_movi_e_trainable_total_is_4_953_601_with_the_gru_biases():
    params = parameter_shapes(dinov2_model("vit_b14", num_slots=15, slot_dim=128))
    trainable = count(params) - count(params["encoder"]["backbone"])
    assert trainable + torch_gru_extra(128) == 4_953_601
