"""Slot attention (the corrector) against a numpy loop written from the paper's equations.

Both GRU conventions: the authors' (VideoSAUR) GRU continues from the LayerNormed slots, SAVi's
from the slots themselves (`gru_state`).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssync_jax.models.corrector import SlotAttention

SLOTS, PATCHES, SLOT_DIM, INPUT_DIM = 3, 5, 8, 6


def layer_norm(x, p, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * p["scale"] + p["bias"]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_slot_attention(params, slots, inputs, iterations, gru_state, eps=1e-8):
    """Per-example loops over slots and patches; GRU in PyTorch's gate convention."""
    p = {k: jax.tree.map(np.asarray, v) for k, v in params.items()}
    g = p["gru"]
    slots = np.array(slots, np.float64)
    out_slots, out_attn, out_logits = [], [], []
    for b in range(slots.shape[0]):
        x = layer_norm(np.asarray(inputs[b], np.float64), p["norm_features"])
        k, v = x @ p["to_k"]["kernel"], x @ p["to_v"]["kernel"]
        s = slots[b]
        for _ in range(iterations):
            normalized = layer_norm(s, p["norm_slots"])
            q = normalized @ p["to_q"]["kernel"]
            h = normalized if gru_state == "normalized_slots" else s
            logits = np.array([[q[j] @ k[n] / np.sqrt(SLOT_DIM) for j in range(SLOTS)] for n in range(PATCHES)])
            attn = np.exp(logits - logits.max(1, keepdims=True))
            attn /= attn.sum(1, keepdims=True)
            w = (attn + eps) / (attn + eps).sum(0, keepdims=True)
            updates = np.stack([sum(w[n, j] * v[n] for n in range(PATCHES)) for j in range(SLOTS)])
            r = sigmoid(updates @ g["ir"]["kernel"] + g["ir"]["bias"] + h @ g["hr"]["kernel"])
            z = sigmoid(updates @ g["iz"]["kernel"] + g["iz"]["bias"] + h @ g["hz"]["kernel"])
            n_ = np.tanh(updates @ g["in"]["kernel"] + g["in"]["bias"] + r * (h @ g["hn"]["kernel"] + g["hn"]["bias"]))
            s = (1 - z) * n_ + z * h
            m = p["mlp"]
            hidden = np.maximum(layer_norm(s, m["norm"]) @ m["dense_0"]["kernel"] + m["dense_0"]["bias"], 0)
            s = s + hidden @ m["dense_1"]["kernel"] + m["dense_1"]["bias"]
        out_slots.append(s)
        out_attn.append(attn)
        out_logits.append(logits)
    return np.stack(out_slots), np.stack(out_attn), np.stack(out_logits)


@pytest.fixture(scope="module", params=["normalized_slots", "slots"])
def setup(request):
    keys = jax.random.split(jax.random.key(0), 3)
    slots = jax.random.normal(keys[0], (2, SLOTS, SLOT_DIM))
    inputs = jax.random.normal(keys[1], (2, PATCHES, INPUT_DIM))
    module = SlotAttention(num_iterations=2, gru_state=request.param)
    shapes = jax.eval_shape(module.init, keys[2], slots, inputs)["params"]
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda s: jnp.asarray(rng.normal(0.0, 0.3, s.shape), s.dtype), shapes)
    return module, params, slots, inputs


@pytest.mark.parametrize("iterations", [1, 3])
def test_matches_numpy_loop_including_last_iteration_logits(setup, iterations):
    module, params, slots, inputs = setup
    got = module.apply({"params": params}, slots, inputs, iterations)
    want = numpy_slot_attention(params, slots, inputs, iterations, module.gru_state)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w, atol=1e-5, rtol=1e-5)


def test_attention_sums_to_one_over_slots(setup):
    module, params, slots, inputs = setup
    _, attention, _ = module.apply({"params": params}, slots, inputs)
    assert attention.shape == (2, PATCHES, SLOTS)
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-6)


def test_permuting_slots_permutes_outputs(setup):
    module, params, slots, inputs = setup
    order = jnp.array([2, 0, 1])
    new_slots, attention, logits = module.apply({"params": params}, slots, inputs)
    p_slots, p_attention, p_logits = module.apply({"params": params}, slots[:, order], inputs)
    np.testing.assert_allclose(p_slots, new_slots[:, order], atol=1e-6)
    np.testing.assert_allclose(p_attention, attention[:, :, order], atol=1e-6)
    np.testing.assert_allclose(p_logits, logits[:, :, order], atol=1e-5)


def test_permuting_input_patches_leaves_slots_unchanged(setup):
    module, params, slots, inputs = setup
    order = jnp.array([4, 2, 0, 1, 3])
    new_slots, attention, _ = module.apply({"params": params}, slots, inputs)
    p_slots, p_attention, _ = module.apply({"params": params}, slots, inputs[:, order])
    np.testing.assert_allclose(p_slots, new_slots, atol=1e-5)
    np.testing.assert_allclose(p_attention, attention[:, order], atol=1e-6)


def test_the_two_gru_states_give_different_slots(setup):
    module, params, slots, inputs = setup
    other = module.clone(gru_state="slots" if module.gru_state == "normalized_slots" else "normalized_slots")
    ours = module.apply({"params": params}, slots, inputs)[0]
    theirs = other.apply({"params": params}, slots, inputs)[0]
    assert np.abs(np.asarray(ours) - np.asarray(theirs)).max() > 1e-2
