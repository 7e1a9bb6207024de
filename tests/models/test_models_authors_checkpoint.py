"""The authors' PyTorch state dict maps onto our MOVi-C model: every shape, and the same functions.

The synthetic state dict has the key names and shapes of the authors' MOVi-C checkpoint (slot dim
64, 11 slots, ViT-S/14 at 336²); the reference computations below follow PyTorch's layouts and
formulas (Linear y = x W^T + b, GRUCell gates r, z, n), written in numpy.
"""

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import linen as nn

from ssync_jax.models import build_model
from ssync_jax.models.authors_checkpoint import authors_to_flax
from ssync_jax.models.config import dinov2_feature_model
from ssync_jax.models.decoders import MLPDecoder
from ssync_jax.models.predictor import TransformerPredictor
from ssync_jax.tools.import_torch_checkpoint import convert, import_checkpoint

D, SLOTS, PATCHES, VIT, HIDDEN = 64, 11, 576, 384, 1024


def linear(state, name, fan_out, fan_in, rng, bias=True):
    state[f"{name}.weight"] = rng.normal(0, fan_in**-0.5, (fan_out, fan_in)).astype(np.float32)
    if bias:
        state[f"{name}.bias"] = rng.normal(0, 0.1, (fan_out,)).astype(np.float32)


def layer_norm_params(state, name, width, rng):
    state[f"{name}.weight"] = (1 + 0.1 * rng.normal(size=width)).astype(np.float32)
    state[f"{name}.bias"] = (0.1 * rng.normal(size=width)).astype(np.float32)


def synthetic_movi_c_state() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    s: dict[str, np.ndarray] = {"initializer.slots": rng.normal(size=(1, SLOTS, D)).astype(np.float32)}
    layer_norm_params(s, "encoder.module.output_transform.layers.0", VIT, rng)
    linear(s, "encoder.module.output_transform.layers.1", 2 * VIT, VIT, rng)
    linear(s, "encoder.module.output_transform.layers.3", D, 2 * VIT, rng)
    c = "processor.module.corrector"
    for name in ("to_k", "to_v", "to_q"):
        linear(s, f"{c}.{name}", D, D, rng, bias=False)
    s[f"{c}.gru.weight_ih"] = rng.normal(0, 0.2, (3 * D, D)).astype(np.float32)
    s[f"{c}.gru.weight_hh"] = rng.normal(0, 0.2, (3 * D, D)).astype(np.float32)
    s[f"{c}.gru.bias_ih"] = rng.normal(0, 0.5, (3 * D,)).astype(np.float32)
    s[f"{c}.gru.bias_hh"] = rng.normal(0, 0.5, (3 * D,)).astype(np.float32)
    layer_norm_params(s, f"{c}.mlp.layers.0", D, rng)
    linear(s, f"{c}.mlp.layers.1", 4 * D, D, rng)
    linear(s, f"{c}.mlp.layers.3", D, 4 * D, rng)
    layer_norm_params(s, f"{c}.norm_features", D, rng)
    layer_norm_params(s, f"{c}.norm_slots", D, rng)
    p = "processor.module.predictor.blocks.0"
    linear(s, f"{p}.self_attn.qkv", 3 * D, D, rng)
    linear(s, f"{p}.self_attn.out_proj", D, D, rng)
    linear(s, f"{p}.linear1", 4 * D, D, rng)
    linear(s, f"{p}.linear2", D, 4 * D, rng)
    layer_norm_params(s, f"{p}.norm1", D, rng)
    layer_norm_params(s, f"{p}.norm2", D, rng)
    s["decoder.module.pos_emb"] = rng.normal(size=(1, 1, PATCHES, D)).astype(np.float32)
    for i, (fan_out, fan_in) in enumerate([(HIDDEN, D), (HIDDEN, HIDDEN), (HIDDEN, HIDDEN), (VIT + 1, HIDDEN)]):
        linear(s, f"decoder.module.mlp.layers.{2 * i}", fan_out, fan_in, rng)
    b = "encoder.module.backbone.model."
    s[b + "cls_token"] = np.zeros((1, 1, VIT), np.float32)
    s[b + "pos_embed"] = np.zeros((1, 1 + 37 * 37, VIT), np.float32)
    s[b + "patch_embed.proj.weight"] = np.zeros((VIT, 3, 14, 14), np.float32)
    s[b + "patch_embed.proj.bias"] = np.zeros((VIT,), np.float32)
    s[b + "norm.weight"] = s[b + "norm.bias"] = np.zeros((VIT,), np.float32)
    block = {"norm1": (VIT,), "norm2": (VIT,), "attn.qkv": (3 * VIT, VIT), "attn.proj": (VIT, VIT),
             "mlp.fc1": (4 * VIT, VIT), "mlp.fc2": (VIT, 4 * VIT)}  # fmt: skip
    for i in range(12):
        for name, shape in block.items():
            s[f"{b}blocks.{i}.{name}.weight"] = np.zeros(shape, np.float32)
            s[f"{b}blocks.{i}.{name}.bias"] = np.zeros(shape[:1], np.float32)
        s[f"{b}blocks.{i}.ls1.gamma"] = s[f"{b}blocks.{i}.ls2.gamma"] = np.zeros((VIT,), np.float32)
    return s


@pytest.fixture(scope="module")
def converted():
    state = synthetic_movi_c_state()
    params, unused = authors_to_flax(state)
    return state, params, unused


def torch_layer_norm(x, state, name, eps=1e-5):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * state[f"{name}.weight"] + state[f"{name}.bias"]


def torch_linear(x, state, name):
    return x @ state[f"{name}.weight"].T + state.get(f"{name}.bias", 0.0)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_every_tensor_is_used_and_shapes_match_the_movi_c_model(converted):
    _, params, unused = converted
    model = build_model(dinov2_feature_model("vit_s14", num_slots=SLOTS, slot_dim=D))
    video = jax.ShapeDtypeStruct((1, 1, 336, 336, 3), jnp.float32)
    expected = jax.eval_shape(lambda v: model.init(jax.random.key(0), v), video)["params"]
    assert unused == []
    assert jax.tree.structure(params) == jax.tree.structure(expected)
    assert jax.tree.map(lambda a, b: a.shape == b.shape, params, expected) == jax.tree.map(lambda _: True, expected)


def test_gru_matches_pytorch_gru_cell_formula(converted):
    state, params, _ = converted
    g = "processor.module.corrector.gru"
    rng = np.random.default_rng(1)
    x, h = rng.normal(size=(SLOTS, D)).astype(np.float32), rng.normal(size=(SLOTS, D)).astype(np.float32)
    gi = x @ state[f"{g}.weight_ih"].T + state[f"{g}.bias_ih"]
    gh = h @ state[f"{g}.weight_hh"].T + state[f"{g}.bias_hh"]
    r = sigmoid(gi[:, :D] + gh[:, :D])
    z = sigmoid(gi[:, D : 2 * D] + gh[:, D : 2 * D])
    n = np.tanh(gi[:, 2 * D :] + r * gh[:, 2 * D :])
    want = (1 - z) * n + z * h
    got, _ = nn.GRUCell(D).apply({"params": params["processor"]["corrector"]["gru"]}, h, x)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_predictor_matches_pytorch_pre_norm_transformer_block(converted):
    state, params, _ = converted
    p = "processor.module.predictor.blocks.0"
    slots = np.random.default_rng(2).normal(size=(1, SLOTS, D)).astype(np.float32)
    heads, head_dim = 4, D // 4
    qkv = torch_linear(torch_layer_norm(slots, state, f"{p}.norm1"), state, f"{p}.self_attn.qkv")[0]
    q, k, v = (qkv[:, i * D : (i + 1) * D].reshape(SLOTS, heads, head_dim) for i in range(3))
    logits = np.einsum("shd,thd->hst", q, k) / np.sqrt(head_dim)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    attended = np.einsum("hst,thd->shd", weights, v).reshape(1, SLOTS, D)
    x = slots + torch_linear(attended, state, f"{p}.self_attn.out_proj")
    hidden = np.maximum(torch_linear(torch_layer_norm(x, state, f"{p}.norm2"), state, f"{p}.linear1"), 0)
    want = x + torch_linear(hidden, state, f"{p}.linear2")
    got = TransformerPredictor(num_blocks=1, num_heads=4).apply(
        {"params": params["processor"]["predictor"]}, slots
    )
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_decoder_matches_pytorch_mlp_with_position_embedding(converted):
    state, params, _ = converted
    slots = np.random.default_rng(3).normal(size=(1, SLOTS, D)).astype(np.float32)
    x = slots[:, :, None, :] + state["decoder.module.pos_emb"][0]  # [1, S, N, D]
    for i in (0, 2, 4):
        x = np.maximum(torch_linear(x, state, f"decoder.module.mlp.layers.{i}"), 0)
    out = torch_linear(x, state, "decoder.module.mlp.layers.6")  # [1, S, N, 385]
    alpha = out[..., -1].transpose(0, 2, 1)  # [1, N, S]
    masks = np.exp(alpha - alpha.max(-1, keepdims=True))
    masks /= masks.sum(-1, keepdims=True)
    want = np.einsum("bns,bsnf->bnf", masks, out[..., :-1])
    got = MLPDecoder(VIT, PATCHES).apply({"params": params["decoder"]}, slots)
    np.testing.assert_allclose(got["alpha_logits"], alpha, atol=1e-3)
    np.testing.assert_allclose(got["reconstruction"], want, atol=1e-3)


def test_missing_key_names_the_key():
    state = synthetic_movi_c_state()
    del state["processor.module.corrector.to_q.weight"]
    with pytest.raises(KeyError, match="processor.module.corrector.to_q.weight"):
        authors_to_flax(state)


def test_unknown_keys_are_reported_not_silently_dropped():
    state = synthetic_movi_c_state()
    state["loss_fns.contrastive.temperature"] = np.ones(())
    _, unused = authors_to_flax(state)
    assert unused == ["loss_fns.contrastive.temperature"]


def test_import_cli_writes_an_orbax_checkpoint_that_restores_the_mapped_params(tmp_path):
    state = synthetic_movi_c_state()
    ckpt = tmp_path / "ssync_movi_c.npz"
    np.savez(ckpt, **state)
    out = tmp_path / "imported"
    assert import_checkpoint(ckpt, dinov2_feature_model("vit_s14", num_slots=SLOTS, slot_dim=D), out) == []
    restored = ocp.StandardCheckpointer().restore(out)
    np.testing.assert_array_equal(restored["params"]["initializer"]["slots"], state["initializer.slots"][0])
    np.testing.assert_array_equal(
        restored["params"]["processor"]["corrector"]["to_q"]["kernel"],
        state["processor.module.corrector.to_q.weight"].T,
    )
    with pytest.raises(FileExistsError, match="already exists"):
        import_checkpoint(ckpt, dinov2_feature_model("vit_s14", num_slots=SLOTS, slot_dim=D), out)


def test_checkpoint_for_another_slot_count_is_rejected_with_the_shapes():
    with pytest.raises(ValueError, match=r"checkpoint \(11, 64\) vs config \(7, 64\)"):
        convert(synthetic_movi_c_state(), dinov2_feature_model("vit_s14", num_slots=7, slot_dim=D))
