"""Matrix products that keep bfloat16 fast on XLA:CPU: float32 accumulation, canonical layouts.

XLA:CPU (jax 0.10) runs a bfloat16 product on its native bfloat16 kernel (AVX512-BF16) only in one
form: row-major [M, K] @ [K, N] with a float32 result. Any other form is computed by converting both
operands to float32 first, which is slower than float32 throughout: a bfloat16 result (Flax's `Dense`
under `dtype=bfloat16`), and a transposed operand, which is what autodiff makes of the backward
pass (dx = g @ wᵀ, dw = xᵀ @ g: XLA folds the transposes into the product). `python -m
benchmarks.matmul` times each form; its figures are in docs/RESULTS.md §2.1.

Long self-attention (the frozen ViT's 577 tokens) has a second trap: XLA:CPU runs the batched
[B, H, L, Dh] products with their softmax as one fused kernel far below the matrix-product rate.
`attention` runs such sequences one (frame, head) at a time in a `lax.map`, each product a plain
row-major [L, Dh] @ [Dh, L] and [L, L] @ [L, Dh] whose [L, L] weights stay in cache
(`python -m benchmarks.attention` times both forms; figures in docs/RESULTS.md §2.1).

`dense` (x @ w + b, the product of every `ssync_jax.models.layers.Dense`) leaves float32 and other
types to XLA unchanged. A bfloat16 product accumulates in float32 and returns bfloat16, and on CPU
runs through `affine`, whose backward products take explicitly transposed copies (one extra pass
over the operand, far cheaper than the converted product) and which adds the bias and sums its
gradient in float32. The values are those of a bfloat16 product
with float32 accumulation, as GPUs and TPUs compute it; off the CPU, `dense` is that product as XLA
writes it.
"""

import functools
import pathlib

import jax
import jax.numpy as jnp

# CPU instruction sets that give XLA:CPU a native bfloat16 product (AVX-512 BF16, AMX).
NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's instruction-set flags (Linux /proc/cpuinfo; empty elsewhere)."""
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return frozenset()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def bfloat16_pays() -> bool:
    """Whether bfloat16 computation is faster than float32 here: on GPUs and TPUs, and on CPUs with a
    native bfloat16 product. Without one (AVX2-only CPUs) XLA converts every bfloat16 product to
    float32 and the step is slower than in float32 (docs/RESULTS.md §2)."""
    if jax.default_backend() != "cpu":
        return True
    return bool(cpu_flags() & set(NATIVE_BFLOAT16_FLAGS))


def transposed_copy(x: jax.Array) -> jax.Array:
    """xᵀ of a 2-D array as a new row-major array.

    A plain `x.T` feeding a product is folded into the product's dimension numbers, which sends the
    product down the converted path; this reshape–transpose–reshape is xᵀ too, but XLA cannot fold it
    and copies instead. An odd second side has no such split, and gets the plain transpose.
    """
    rows, cols = x.shape
    if cols % 2:
        return x.T
    return x.reshape(rows, cols // 2, 2).transpose(1, 2, 0).reshape(cols, rows)


def _accumulated_in_float32(x: jax.Array, w: jax.Array, b: jax.Array | None) -> jax.Array:
    """x [M, K] @ w [K, N] (+ b [N]) accumulated in float32, returned in x's dtype."""
    y = jnp.dot(x, w, preferred_element_type=jnp.float32)
    return (y if b is None else y + b.astype(jnp.float32)).astype(x.dtype)


@jax.custom_vjp
def affine(x: jax.Array, w: jax.Array, b: jax.Array | None) -> jax.Array:
    """x [M, K] @ w [K, N] (+ b [N]) accumulated in float32, returned in x's dtype; backward in the same form."""
    return _accumulated_in_float32(x, w, b)


def _affine_forward(x, w, b):
    return affine(x, w, b), (x, w, b)


def _affine_backward(residuals, grad):
    x, w, b = residuals
    grad = grad.astype(x.dtype)
    dx = jnp.dot(grad, transposed_copy(w), preferred_element_type=jnp.float32)  # [M, K]
    dw = jnp.dot(transposed_copy(x), grad, preferred_element_type=jnp.float32)  # [K, N]
    # Summed here, on the incoming gradient: left to autodiff, XLA:CPU sums a converted float32 copy
    # of the [M, N] gradient in a slow windowed reduction.
    db = None if b is None else jnp.sum(grad, axis=0, dtype=jnp.float32).astype(b.dtype)
    return dx.astype(x.dtype), dw.astype(w.dtype), db


affine.defvjp(_affine_forward, _affine_backward)


# From this many tokens on, `attention` takes the per-(frame, head) form on CPU; shorter sequences
# (the predictor's slots) keep the batched products, which are cheaper there and are differentiated.
PER_HEAD_ATTENTION_MIN_LENGTH = 128


def attention(q: jax.Array, k: jax.Array, v: jax.Array, scale: float, per_head: bool | None = None) -> jax.Array:
    """softmax(scale · q kᵀ) v over each head: q, k, v [B, L, H, Dh] -> [B, L, H, Dh] in v's dtype.

    The logits and the softmax are float32 whatever the dtype; the products accumulate in float32.
    On a single CPU device, a sequence of at least PER_HEAD_ATTENTION_MIN_LENGTH tokens is computed
    one (batch element, head) at a time (module docstring); the values are the same up to float
    rounding. With several devices the batch axis may be sharded, and mapping over it would gather
    it onto every device, so the batched form is kept.
    `per_head` True or False forces one form (benchmarks.attention times both).
    """
    batch, length, heads, head_dim = q.shape
    if per_head is None:
        # One CPU device only: a map over a batch axis sharded across devices would gather it.
        single_cpu = jax.default_backend() == "cpu" and jax.device_count() == 1
        per_head = single_cpu and length >= PER_HEAD_ATTENTION_MIN_LENGTH
    if not per_head:
        logits = jnp.einsum("blhd,bmhd->bhlm", q, k, preferred_element_type=jnp.float32)  # [B, H, L, L]
        weights = jax.nn.softmax(logits * scale, axis=-1).astype(v.dtype)
        return jnp.einsum("bhlm,bmhd->blhd", weights, v, preferred_element_type=jnp.float32).astype(v.dtype)

    def one_head(qkv: jax.Array) -> jax.Array:  # [3, L, Dh] -> [L, Dh]
        logits = jnp.dot(qkv[0], transposed_copy(qkv[1]), preferred_element_type=jnp.float32)  # [L, L]
        weights = jax.nn.softmax(logits * scale, axis=-1).astype(v.dtype)
        return jnp.dot(weights, qkv[2], preferred_element_type=jnp.float32).astype(v.dtype)

    heads_first = jnp.stack([q, k, v.astype(q.dtype)], axis=2).transpose(0, 3, 2, 1, 4)  # [B, H, 3, L, Dh]
    out = jax.lax.map(one_head, heads_first.reshape(batch * heads, 3, length, head_dim))  # [B*H, L, Dh]
    return out.reshape(batch, heads, length, head_dim).transpose(0, 2, 1, 3)


def dense(x: jax.Array, w: jax.Array, b: jax.Array | None = None) -> jax.Array:
    """x [..., K] @ w [K, N] (+ b [N]); in bfloat16, accumulated in float32 and in the fast form (module
    docstring). Other types: `jnp.dot(x, w) + b`, as Flax's Dense."""
    if not x.dtype == w.dtype == jnp.bfloat16:
        y = jnp.dot(x, w)
        return y if b is None else y + b.astype(y.dtype)
    rows = x.reshape(-1, x.shape[-1])  # [M, K]
    # Off the CPU, XLA's own backward products are fast: only the forward needs writing out.
    out = affine(rows, w, b) if jax.default_backend() == "cpu" else _accumulated_in_float32(rows, w, b)
    return out.reshape(*x.shape[:-1], w.shape[1])

