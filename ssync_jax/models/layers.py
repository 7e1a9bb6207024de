"""Small building blocks shared by the encoders, corrector, predictor and decoders.

Initialisation schemes (`init_scheme`): "torch" draws every parameter as the authors' PyTorch code does
(their released checkpoints and their training start from it), "flax" uses Flax's defaults as
SAVi's JAX code does. Under "torch": Linear weights and biases U(±1/√fan_in) (PyTorch's
`nn.Linear` default; the authors' MLPs keep it, biases included: their `init_parameters` is handed
the whole `nn.Sequential` and so changes nothing); GRU weights and biases U(±1/√hidden); the
predictor's attention Xavier-uniform with zero biases. LayerNorms are ones and zeros in both.
"""

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from ssync_jax.models import precision

# PyTorch's LayerNorm default; the slot modules follow the authors' PyTorch code.
TORCH_LAYER_NORM_EPS = 1e-5
INIT_SCHEMES = ("torch", "flax")


def uniform(bound: float) -> nn.initializers.Initializer:
    """U(−bound, bound)."""

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _initializers(init_scheme: str, fan_in: int) -> dict[str, nn.initializers.Initializer]:
    """kernel_init and bias_init of a Dense layer of `fan_in` inputs under `init_scheme`."""
    if init_scheme not in INIT_SCHEMES:
        raise ValueError(f"config.model.init_scheme must be one of {INIT_SCHEMES}, got {init_scheme!r}")
    if init_scheme == "flax":
        return {"kernel_init": nn.initializers.lecun_normal(), "bias_init": nn.initializers.zeros}
    bound = fan_in**-0.5
    return {"kernel_init": uniform(bound), "bias_init": uniform(bound)}


def _dense_params(
    module: nn.Module,
    features: int,
    fan_in: int,
    init_scheme: str,
    use_bias: bool,
    kernel_init: nn.initializers.Initializer | None = None,
    bias_init: nn.initializers.Initializer | None = None,
) -> tuple[jax.Array, jax.Array | None]:
    """`module`'s "kernel" [fan_in, features] and "bias" [features] (None without one), laid out as
    Flax's `nn.Dense` lays them out (a checkpoint cannot tell them apart) and initialised under
    `init_scheme` unless an initializer is given."""
    initializers = _initializers(init_scheme, fan_in)
    kernel = module.param("kernel", kernel_init or initializers["kernel_init"], (fan_in, features))
    if not use_bias:
        return kernel, None
    return kernel, module.param("bias", bias_init or initializers["bias_init"], (features,))


class Dense(nn.Module):
    """x @ kernel + bias, every Dense layer of the models: Flax's `nn.Dense` (same parameters, same
    float32 function), computed by `precision.dense`, which keeps a bfloat16 layer's forward and
    backward on XLA:CPU's bfloat16 kernels (the bias added and its gradient summed in float32).

    Attributes:
        features: Output width.
        init_scheme: "torch" (PyTorch's `nn.Linear`) or "flax" (Flax's defaults); see the module docstring.
        use_bias: Whether there is a bias.
        dtype: Computation dtype.
        kernel_init, bias_init: Initializers that replace `init_scheme`'s.
    """

    features: int
    init_scheme: str = "flax"
    use_bias: bool = True
    dtype: Any = jnp.float32
    kernel_init: nn.initializers.Initializer | None = None
    bias_init: nn.initializers.Initializer | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x [..., fan_in]. Returns: [..., features] in `dtype`."""
        kernel, bias = _dense_params(
            self, self.features, x.shape[-1], self.init_scheme, self.use_bias, self.kernel_init, self.bias_init
        )
        return precision.dense(x.astype(self.dtype), kernel.astype(self.dtype), bias)


class DenseParams(nn.Module):
    """A Dense layer's kernel and bias (`Dense`'s), for a caller that applies them itself (see `MLP`).

    Attributes:
        features: Output width.
        fan_in: Input width.
        init_scheme: "torch" or "flax".
    """

    features: int
    fan_in: int
    init_scheme: str = "flax"

    @nn.compact
    def __call__(self) -> tuple[jax.Array, jax.Array]:
        return _dense_params(self, self.features, self.fan_in, self.init_scheme, use_bias=True)


class MLP(nn.Module):
    """Dense layers with ReLU between them, optionally preceded by a LayerNorm.

    Attributes:
        hidden_sizes: Widths of the hidden layers (ReLU after each).
        output_size: Width of the last (linear) layer.
        input_norm: Apply LayerNorm to the input first (SAVi/VideoSAUR "initial_layer_norm").
        init_scheme: "torch" or "flax" (see the module docstring).
        dtype: Computation dtype.
    """

    hidden_sizes: Sequence[int]
    output_size: int
    input_norm: bool = False
    init_scheme: str = "flax"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, x: jax.Array | tuple[jax.Array, ...], apply_output: bool = True
    ) -> jax.Array | tuple[jax.Array, jax.Array, jax.Array]:
        """Args:
            x: [..., D_in]; or a tuple of arrays whose broadcast sum is the input. The first layer is
                linear, so it then runs on each part and adds the results, and the input itself is
                never formed: the MLP decoder's slots [B, 1, S, D] and patch positions [N, 1, D] cost
                (B·S + N) rows of the first layer instead of B·N·S (same function up to rounding).
            apply_output: False returns the last hidden layer and the output layer's kernel and
                bias instead of applying them (the output layer is linear: a caller may first
                combine hidden states, as the MLP decoder does).

        Returns:
            [..., output_size]; or (hidden [..., H], kernel [H, output_size], bias [output_size]).
        """
        widths = list(self.hidden_sizes)
        if isinstance(x, tuple):
            if self.input_norm:
                raise ValueError("an MLP with input_norm needs its whole input, not a tuple of parts")
            kernel, bias = DenseParams(widths[0], x[0].shape[-1], self.init_scheme, name="dense_0")()
            kernel = kernel.astype(self.dtype)
            # Each part's product accumulated in at least float32, summed with the bias there (one
            # rounding to the compute dtype, as `Dense`).
            accumulate = jnp.promote_types(self.dtype, jnp.float32)
            summed = sum(jnp.dot(part.astype(self.dtype), kernel, preferred_element_type=accumulate) for part in x)
            x = nn.relu(summed + bias.astype(accumulate)).astype(self.dtype)
            widths = widths[1:]
        elif self.input_norm:
            x = nn.LayerNorm(epsilon=TORCH_LAYER_NORM_EPS, dtype=self.dtype, name="norm")(x)
        first = len(self.hidden_sizes) - len(widths)
        for i, width in enumerate(widths, start=first):
            x = nn.relu(Dense(width, self.init_scheme, dtype=self.dtype, name=f"dense_{i}")(x))
        last = len(self.hidden_sizes)
        kernel, bias = DenseParams(self.output_size, x.shape[-1], self.init_scheme, name=f"dense_{last}")()
        if not apply_output:
            return x, kernel, bias
        return precision.dense(x, kernel.astype(self.dtype), bias)


class GRUCell(nn.Module):
    """A GRU cell with Flax's `nn.GRUCell` parameter layout and formula, and a choice of initialisation.

    r = σ(W_ir x + b_ir + W_hr h), z = σ(W_iz x + b_iz + W_hz h), n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),
    h' = (1 − z) ⊙ n + z ⊙ h: PyTorch's GRUCell too, except that PyTorch keeps an input and a hidden
    bias for r and z where these add up to one (b_ir = b_ir' + b_hr', see
    `ssync_jax.models.authors_checkpoint.torch_gru_to_flax`). Under "torch", each of those sums is
    drawn as the sum of PyTorch's two U(±1/√hidden) draws, so the function starts from PyTorch's
    distribution; under "flax", Flax's defaults (lecun normal, orthogonal recurrent, zero biases).

    Attributes:
        features: Hidden width.
        init_scheme: "torch" or "flax".
        dtype: Computation dtype.
    """

    features: int
    init_scheme: str = "flax"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, hidden: jax.Array, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Args: hidden [..., H]; inputs [..., D_in]. Returns: (new hidden, new hidden), as `nn.GRUCell`."""
        if self.init_scheme == "torch":
            bound = self.features**-0.5
            kernel, recurrent, bias = uniform(bound), uniform(bound), uniform(bound)
            summed_bias = _sum_of_uniforms(bound)
        elif self.init_scheme == "flax":
            kernel, recurrent = nn.initializers.lecun_normal(), nn.initializers.orthogonal()
            bias = summed_bias = nn.initializers.zeros
        else:
            raise ValueError(f"config.model.init_scheme must be one of {INIT_SCHEMES}, got {self.init_scheme!r}")

        def input_dense(name, bias_init):
            return Dense(self.features, dtype=self.dtype, kernel_init=kernel, bias_init=bias_init, name=name)

        def hidden_dense(name, use_bias=False):
            return Dense(
                self.features, use_bias=use_bias, dtype=self.dtype, kernel_init=recurrent, bias_init=bias, name=name
            )

        reset = nn.sigmoid(input_dense("ir", summed_bias)(inputs) + hidden_dense("hr")(hidden))
        update = nn.sigmoid(input_dense("iz", summed_bias)(inputs) + hidden_dense("hz")(hidden))
        candidate = jnp.tanh(input_dense("in", bias)(inputs) + reset * hidden_dense("hn", use_bias=True)(hidden))
        new_hidden = (1.0 - update) * candidate + update * hidden
        return new_hidden, new_hidden


def _sum_of_uniforms(bound: float) -> nn.initializers.Initializer:
    """U(±bound) + U(±bound): PyTorch's input and hidden bias of one gate, folded into one."""

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        first, second = jax.random.split(key)
        return uniform(bound)(first, shape, dtype) + uniform(bound)(second, shape, dtype)

    return init


class MultiHeadSelfAttention(nn.Module):
    """Self-attention with one fused q/k/v projection, laid out like timm's and torch's.

    The fused kernel's output axis is ordered (q|k|v, head, head_dim), so a PyTorch
    `qkv.weight` / `in_proj_weight` [3D, D] maps to our kernel by a plain transpose.

    Attributes:
        num_heads: Number of heads; the width must be divisible by it.
        logit_scale: "rsqrt_head_dim" multiplies q·k by 1/√d_head (standard attention);
            "sqrt_head_dim" by √d_head, as the authors' predictor does (`networks.Attention` sets
            `scale = d**-0.5` and then divides q by it): their checkpoints were trained so.
        init_scheme: "torch" (the authors' predictor: Xavier-uniform q, k, v and output projections, zero
            biases) or "flax".
        dtype: Computation dtype (softmax runs in float32).
    """

    num_heads: int
    logit_scale: str = "rsqrt_head_dim"
    init_scheme: str = "flax"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x [B, L, D]. Returns: [B, L, D]."""
        batch, length, width = x.shape
        if width % self.num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads={self.num_heads}")
        head_dim = width // self.num_heads
        scales = {"rsqrt_head_dim": head_dim**-0.5, "sqrt_head_dim": head_dim**0.5}
        if self.logit_scale not in scales:
            raise ValueError(f"attention logit_scale must be one of {sorted(scales)}, got {self.logit_scale!r}")
        if self.init_scheme == "torch":
            # Xavier-uniform over each width x width block (q, k, v separately), as the authors'.
            xavier = {"kernel_init": uniform((6.0 / (2 * width)) ** 0.5), "bias_init": nn.initializers.zeros}
        else:
            xavier = {}
        qkv = Dense(3 * width, dtype=self.dtype, name="qkv", **xavier)(x)  # [B, L, 3D]
        qkv = qkv.reshape(batch, length, 3, self.num_heads, head_dim)  # [B, L, 3, H, Dh]
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # [B, L, H, Dh]
        out = precision.attention(q, k, v, scales[self.logit_scale])  # [B, L, H, Dh]
        out = out.reshape(batch, length, width)  # [B, L, D]
        return Dense(width, dtype=self.dtype, name="proj", **xavier)(out)
