"""bfloat16 matrix products (ssync_jax/models/precision.py): the values of a float32-accumulated
product, forward and backward, and the form XLA:CPU runs natively.

References are numpy float64 products of the same bfloat16-rounded inputs; a bfloat16 result
carries one rounding of the float32 sum (relative 2⁻⁸), so each check allows 1 % of the result's
scale, and a float32-accumulated product must also beat the bfloat16-accumulated one XLA would give.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from ssync_jax.models import layers, precision
from ssync_jax.models.decoders import MLPDecoder


def bf16_inputs(*shapes, seed=0):
    keys = jax.random.split(jax.random.key(seed), len(shapes))
    return [jax.random.normal(key, shape).astype(jnp.bfloat16) for key, shape in zip(keys, shapes, strict=True)]


def as64(x):
    return np.asarray(x.astype(jnp.float32), np.float64)


def assert_close_to_scale(actual, expected, fraction=1e-2):
    actual = np.asarray(jnp.asarray(actual).astype(jnp.float32), np.float64)
    scale = np.abs(expected).max()
    assert np.abs(actual - expected).max() <= fraction * scale, np.abs(actual - expected).max() / scale


@pytest.mark.parametrize("rows, cols", [(6, 4), (5, 7), (1, 8), (8, 1)])
def test_transposed_copy_is_the_transpose(rows, cols):
    x = jnp.arange(rows * cols, dtype=jnp.float32).reshape(rows, cols)
    np.testing.assert_array_equal(jax.jit(precision.transposed_copy)(x), np.asarray(x).T)


def test_affine_and_its_gradients_match_float64_products():
    x, w, g = bf16_inputs((96, 64), (64, 48), (96, 48))
    b = jax.random.normal(jax.random.key(5), (48,))  # a float32 parameter, as the Dense layers pass it
    out, pullback = jax.vjp(precision.affine, x, w, b)
    dx, dw, db = pullback(g)
    assert out.dtype == dx.dtype == dw.dtype == jnp.bfloat16 and db.dtype == jnp.float32
    assert_close_to_scale(out, as64(x) @ as64(w) + np.asarray(b, np.float64))
    assert_close_to_scale(dx, as64(g) @ as64(w).T)
    assert_close_to_scale(dw, as64(x).T @ as64(g))
    np.testing.assert_allclose(db, as64(g).sum(axis=0), rtol=1e-6, atol=1e-5)  # a float32 sum of bf16 values


def test_affine_without_bias_has_no_bias_gradient():
    x, w, g = bf16_inputs((8, 4), (4, 6), (8, 6))
    out, pullback = jax.vjp(lambda x, w: precision.affine(x, w, None), x, w)
    dx, dw = pullback(g)
    assert_close_to_scale(out, as64(x) @ as64(w))
    assert dx.shape == x.shape and dw.shape == w.shape


def test_long_sums_are_accumulated_in_float32():
    # 4096 ones plus 4096 × 2⁻⁹: a bfloat16 running sum stops growing at 256 (its spacing there is 2 > 1);
    # a float32 sum returns 4104 exactly, which rounds to 4096 in bfloat16 (spacing 32).
    x = jnp.ones((2, 8192), jnp.bfloat16)
    w = jnp.concatenate([jnp.ones((4096, 1)), jnp.full((4096, 1), 2.0**-9)]).astype(jnp.bfloat16)
    np.testing.assert_array_equal(np.asarray(precision.dense(x, w), np.float32), 4096.0)


def test_float32_products_are_left_to_xla_unchanged():
    keys = jax.random.split(jax.random.key(0), 3)
    x, w, b = jax.random.normal(keys[0], (3, 5, 8)), jax.random.normal(keys[1], (8, 4)), jax.random.normal(keys[2], (4,))
    np.testing.assert_array_equal(precision.dense(x, w, b), jnp.dot(x, w) + b)
    np.testing.assert_array_equal(precision.dense(x, w), jnp.dot(x, w))


def test_our_dense_layer_is_flax_dense_in_float32_and_close_to_float64_in_bfloat16():
    x = jax.random.normal(jax.random.key(3), (2, 5, 16))
    ours, flax_dense = layers.Dense(8), nn.Dense(8)
    params = flax_dense.init(jax.random.key(1), x)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.key(1), x)) == jax.tree.map(jnp.shape, params)
    np.testing.assert_array_equal(ours.apply(params, x), flax_dense.apply(params, x))
    half = layers.Dense(8, dtype=jnp.bfloat16).apply(params, x)
    kernel, bias = (np.asarray(params["params"][name], np.float64) for name in ("kernel", "bias"))
    assert half.dtype == jnp.bfloat16
    assert_close_to_scale(half, as64(x.astype(jnp.bfloat16)) @ as64(jnp.asarray(kernel).astype(jnp.bfloat16)) + bias)


def matrix_products(fn, *args, with_shapes: bool = False) -> list[tuple]:
    """The operand types of each product of two matrices (no batch axis, no side of 1) in `fn`'s
    compiled program: the Dense layers' products, forward and backward; with their operands' shapes
    too (type, type, shape, shape) if `with_shapes`."""
    text = jax.jit(fn).lower(*args).compile().as_text()
    arrays = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(r"(%[\w.\-]+) = (\w+)\[([\d,]*)\]", text)}
    products = []
    for line in text.splitlines():
        match = re.search(r" dot\((%[\w.\-]+), (%[\w.\-]+)\)", line)
        if match and "batch_dims" not in line:
            (lhs_type, lhs_shape), (rhs_type, rhs_shape) = (arrays[name] for name in match.groups())
            sides = [int(n) for n in (lhs_shape + "," + rhs_shape).split(",")]
            if len(sides) == 4 and min(sides) > 1:
                shapes = (tuple(sides[:2]), tuple(sides[2:]))
                products.append((lhs_type, rhs_type, *shapes) if with_shapes else (lhs_type, rhs_type))
    return products


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the form XLA:CPU needs")
def test_bfloat16_decoder_training_runs_every_large_matrix_product_on_bfloat16_operands():
    # Batch 2 x 16 patches x 3 slots = 96 rows per slot and patch, 32 per patch. The second hidden
    # layer (on 96 rows) and the output layer (on the 32 mixed rows): 2 forward products, 2 for the
    # inputs' and 2 for the kernels' gradients; none may be converted to float32 first (XLA:CPU's slow
    # path). The first layer runs per slot (6 rows) and per patch (16 rows), never per slot and patch.
    decoder = MLPDecoder(output_size=32, num_patches=16, hidden_sizes=(64, 64), dtype=jnp.bfloat16)
    slots = jax.random.normal(jax.random.key(0), (2, 3, 8))
    params = decoder.init(jax.random.key(1), slots)

    def loss(params, slots):
        out = decoder.apply(params, slots)
        return jnp.sum(out["reconstruction"] ** 2) + jnp.sum(out["alpha_logits"])

    products = matrix_products(jax.grad(loss, argnums=(0, 1)), params, slots, with_shapes=True)
    large = [(a, b) for a, b, lhs, rhs in products if {96, 32} & {*lhs, *rhs}]
    assert large == [("bf16", "bf16")] * 6, products
    assert not [p for p in products if {96, 32} & {*p[2], *p[3]} and 8 in {*p[2], *p[3]}], products


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the form XLA:CPU needs")
def test_plain_bfloat16_dense_gradients_are_what_the_module_avoids():
    # The premise: without `precision`, XLA:CPU converts the backward products' operands to float32.
    x, w = bf16_inputs((96, 64), (64, 64))
    products = matrix_products(jax.grad(lambda x, w: jnp.sum((x @ w).astype(jnp.float32) ** 2), argnums=(0, 1)), x, w)
    assert len(products) == 3 and ("f32", "f32") in products


def test_bfloat16_pays_only_where_the_cpu_has_a_native_bfloat16_product(monkeypatch):
    from ssync_jax.models import precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma", "avx512f"}))
    assert not precision.bfloat16_pays()  # AVX-512 alone converts bfloat16 products to float32.
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    assert precision.bfloat16_pays()


def attention_float64(q, k, v, scale):
    """softmax(scale · q kᵀ) v per batch element and head, numpy float64: q, k, v [B, L, H, Dh]."""
    q, k, v = (np.asarray(jnp.asarray(a).astype(jnp.float32), np.float64) for a in (q, k, v))
    logits = np.einsum("blhd,bmhd->bhlm", q, k) * scale
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return np.einsum("bhlm,bmhd->blhd", weights, v)


@pytest.mark.parametrize("length", [11, precision.PER_HEAD_ATTENTION_MIN_LENGTH + 3])  # batched / per-head form
@pytest.mark.parametrize("dtype, fraction", [(jnp.float32, 1e-5), (jnp.bfloat16, 1e-2)])
def test_attention_is_softmax_attention_in_both_forms(length, dtype, fraction):
    q, k, v = (jax.random.normal(key, (2, length, 3, 16)).astype(dtype) for key in jax.random.split(jax.random.key(0), 3))
    expected = attention_float64(q, k, v, 0.25)
    for per_head in (None, True, False):  # the form the rule picks, then each form forced
        out = jax.jit(precision.attention, static_argnums=(3, 4))(q, k, v, 0.25, per_head)
        assert out.shape == q.shape and out.dtype == dtype
        assert_close_to_scale(out, expected, fraction)


def test_mlp_given_its_input_in_parts_is_the_mlp_of_their_sum():
    slots, positions = jax.random.normal(jax.random.key(0), (2, 1, 5, 8)), jax.random.normal(jax.random.key(1), (7, 1, 8))
    mlp = layers.MLP((16, 16), 4, init_scheme="torch")
    params = mlp.init(jax.random.key(2), slots + positions)

    def loss(params, slots, positions, parts):
        out = mlp.apply(params, (slots, positions) if parts else slots + positions)  # [2, 7, 5, 4]
        return jnp.sum(jnp.sin(out)), out

    (_, whole), whole_grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(params, slots, positions, False)
    (_, split), split_grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(params, slots, positions, True)
    assert split.shape == (2, 7, 5, 4)
    np.testing.assert_allclose(split, whole, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(split_grads), jax.tree.leaves(whole_grads), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="input_norm"):
        layers.MLP((16,), 4, input_norm=True).init(jax.random.key(2), (slots, positions))
