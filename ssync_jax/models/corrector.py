"""Slot attention as the corrector: slots compete for input features, then a GRU and an MLP update them."""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from ssync_jax.models.layers import MLP, TORCH_LAYER_NORM_EPS, Dense, GRUCell

GRU_STATES = ("normalized_slots", "slots")


class SlotAttention(nn.Module):
    """Slot attention (Locatello et al. 2020) as in the SSync/VideoSAUR code.

    Per iteration: logits = q(norm(slots)) . k(norm(inputs)) / sqrt(D); attention = softmax over
    slots, + eps, renormalised over inputs; updates = attention-weighted mean of v(norm(inputs));
    slots = GRU(updates, hidden state); slots += MLP(slots).

    The GRU's hidden state is where the two codes differ: the authors' (VideoSAUR's) `SlotAttention.step`
    overwrites `slots` with `norm_slots(slots)` before the query, so the GRU continues from the
    *normalised* slots (`gru_state="normalized_slots"`); SAVi's continues from the slots themselves
    (`gru_state="slots"`).

    Attributes:
        num_iterations: Iterations per call unless the call overrides it.
        mlp_multiplier: Residual MLP hidden width / slot dim.
        eps: Added to the attention before renormalising over inputs (keeps empty slots finite).
        gru_state: "normalized_slots" (SSync/VideoSAUR) or "slots" (SAVi), see above.
        init_scheme: Parameter initialisation, "torch" or "flax" (`ssync_jax.models.layers`).
        dtype: Computation dtype.
    """

    num_iterations: int = 2
    mlp_multiplier: int = 4
    eps: float = 1e-8
    gru_state: str = "normalized_slots"
    init_scheme: str = "torch"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, slots: jax.Array, inputs: jax.Array, num_iterations: int | None = None
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Args:
            slots: [B, S, D] slots to refine (the predictor's output or the initial slots).
            inputs: [B, N, D_in] per-frame features.
            num_iterations: Overrides the attribute (the first frame gets more).

        Returns:
            slots [B, S, D]; attention [B, N, S] (softmax over slots, the last iteration's);
            logits [B, N, S] (the last iteration's q.k/sqrt(D), SSync's encoder map).
        """
        if self.gru_state not in GRU_STATES:
            raise ValueError(f"config.model.corrector.gru_state must be one of {GRU_STATES}, got {self.gru_state!r}")
        num_iterations = self.num_iterations if num_iterations is None else num_iterations
        slot_dim = slots.shape[-1]
        inputs = nn.LayerNorm(epsilon=TORCH_LAYER_NORM_EPS, dtype=self.dtype, name="norm_features")(inputs)
        keys = Dense(slot_dim, self.init_scheme, use_bias=False, dtype=self.dtype, name="to_k")(inputs)  # [B, N, D]
        values = Dense(slot_dim, self.init_scheme, use_bias=False, dtype=self.dtype, name="to_v")(inputs)
        norm_slots = nn.LayerNorm(epsilon=TORCH_LAYER_NORM_EPS, dtype=self.dtype, name="norm_slots")
        to_q = Dense(slot_dim, self.init_scheme, use_bias=False, dtype=self.dtype, name="to_q")
        gru = GRUCell(slot_dim, init_scheme=self.init_scheme, dtype=self.dtype, name="gru")
        mlp = MLP(
            (self.mlp_multiplier * slot_dim,), slot_dim, input_norm=True, init_scheme=self.init_scheme, dtype=self.dtype, name="mlp"
        )
        for _ in range(num_iterations):
            normalized = norm_slots(slots)  # [B, S, D]
            queries = to_q(normalized)  # [B, S, D]
            # float32 logits whatever the compute dtype: they are SSync's encoder map.
            logits = jnp.einsum("bnd,bsd->bns", keys, queries, preferred_element_type=jnp.float32)  # [B, N, S]
            logits = logits * slot_dim**-0.5
            attention = jax.nn.softmax(logits, axis=-1)  # [B, N, S]
            weights = attention + self.eps
            weights = weights / weights.sum(axis=1, keepdims=True)  # [B, N, S], sums to 1 over N
            updates = jnp.einsum("bns,bnd->bsd", weights.astype(values.dtype), values)  # [B, S, D]
            slots, _ = gru(normalized if self.gru_state == "normalized_slots" else slots, updates)  # [B, S, D]
            slots = slots + mlp(slots)
        return slots, attention, logits
