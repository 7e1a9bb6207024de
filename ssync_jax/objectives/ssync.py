"""SSync pseudo-labels and losses (Moon & Heo, ECCV 2026), one pure function per idea.

The encoder's slot-attention map and the decoder's alpha map label every patch of a clip. Slot
attention is sharp at object boundaries, the decoder is consistent inside objects, so each module
teaches the other where it is reliable:

    labels -> slot_coverage_iou -> merge_redundant_slots -> relabel
           -> boundary_mask (encoder labels)  -> boundary_loss (decoder learns from encoder)
           -> interior_mask (decoder labels)  -> interior_loss (encoder learns from decoder)

Maps are `[B, T, N, S]` logits over S slots for N = H*W patches. Every function is fixed-shape
and jit/grad-safe: masks weight sums instead of selecting elements, the merge graph is closed by
boolean matrix products instead of a search. Pseudo-labels never carry gradient.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ssync_jax.objectives import registry, resample

# (dt, di, dj) of the 10 neighbours: 8 spatial in the same frame, then the previous and next frame.
NEIGHBOUR_OFFSETS = (
    (0, -1, -1), (0, -1, 0), (0, -1, 1),
    (0, 0, -1), (0, 0, 1),
    (0, 1, -1), (0, 1, 0), (0, 1, 1),
    (-1, 0, 0), (1, 0, 0),
)  # fmt: skip
NUM_NEIGHBOURS = len(NEIGHBOUR_OFFSETS)

# Added to each coverage area in the IoU denominator, as in the authors' code (1e-6 per slot).
_IOU_EPSILON = 2e-6


class PseudoLabels(NamedTuple):
    """Pseudo-labels and patch selections for one batch of clips (no gradient).

    Attributes:
        enc_labels: merged encoder labels, `[B, T, H, W]` int32.
        dec_labels: merged decoder labels, `[B, T, H, W]` int32.
        boundary_mask: patches where the encoder teaches the decoder, `[B, T, H, W]` bool.
        interior_mask: patches where the decoder teaches the encoder, `[B, T, H, W]` bool.
        unmerged_enc_labels: encoder argmax before merging, `[B, T, H, W]` int32.
        unmerged_dec_labels: decoder argmax before merging, `[B, T, H, W]` int32.
        merge_target: slot -> the slot it was merged into (itself if kept), `[B, S]` int32.
    """

    enc_labels: jax.Array
    dec_labels: jax.Array
    boundary_mask: jax.Array
    interior_mask: jax.Array
    unmerged_enc_labels: jax.Array
    unmerged_dec_labels: jax.Array
    merge_target: jax.Array


def labels(logits: jax.Array) -> jax.Array:
    """Pseudo-labels: label_p = argmax_s softmax_s(logits)_p (the first slot on ties).

    The argmax is taken over the float32 softmax, as the authors' code takes it over the slot
    attention masks and the decoder masks: logits that differ by less than float32 resolves after
    the softmax tie there, and the first slot wins, as in their code.

    Args:
        logits: `[..., S]` slot logits per patch.

    Returns:
        `[...]` int32 slot index per patch.
    """
    return jnp.argmax(jax.nn.softmax(logits.astype(jnp.float32), axis=-1), axis=-1).astype(jnp.int32)


def slot_coverage_iou(enc_logits: jax.Array) -> jax.Array:
    """IoU_ij = mean_t |C_ti ∩ C_tj| / (|C_ti| + |C_tj| − |C_ti ∩ C_tj| + 2e-6), C_ts = {p : logits_tps > mean_{t,p} logits_tps}.

    A slot "covers" the patches where its logit exceeds its own clip-wide mean, so coverage is
    judged per slot, independent of the competition between slots.

    Args:
        enc_logits: `[B, T, N, S]` encoder logits.

    Returns:
        `[B, S, S]` float32 coverage IoU between slots, averaged over frames.
    """
    logits = enc_logits.astype(jnp.float32)
    slot_mean = jnp.mean(logits, axis=(1, 2), keepdims=True)  # [B, 1, 1, S]
    coverage = (logits > slot_mean).astype(jnp.float32)  # [B, T, N, S]
    area = jnp.sum(coverage, axis=2)  # [B, T, S]
    intersection = jnp.einsum("btni,btnj->btij", coverage, coverage)  # [B, T, S, S]
    union = area[..., :, None] + area[..., None, :] - intersection + _IOU_EPSILON  # [B, T, S, S]
    return jnp.mean(intersection / union, axis=1)  # [B, S, S]


def merge_redundant_slots(
    iou: jax.Array, slot_counts: jax.Array, iou_threshold: float
) -> jax.Array:
    """merge_target_i = argmax_{j ∈ component(i)} count_j, components of the graph {i–j : i ≠ j, IoU_ij > τ}.

    Components are merged transitively: a–b and b–c put a, b and c together even when IoU(a, c)
    is below the threshold. The winner of a component is its member with the most patches; on a
    tie, the member the authors' depth-first search reaches first (`authors_visit_order`), which
    is what their `argmax` over the component's member list returns. Every member, the winner
    included, maps to it.

    Args:
        iou: `[B, S, S]` slot coverage IoU (see `slot_coverage_iou`).
        slot_counts: `[B, S]` patches per slot under the encoder labels over the whole clip.
        iou_threshold: τ; pairs with IoU strictly above it are redundant.

    Returns:
        `[B, S]` int32 winner slot per slot.
    """
    num_slots = iou.shape[-1]
    identity = jnp.eye(num_slots, dtype=bool)  # [S, S]
    edges = (iou > iou_threshold) & ~identity  # [B, S, S]
    # IoU is symmetric, but float rounding must not make the graph directed.
    edges = edges | jnp.swapaxes(edges, -1, -2)  # [B, S, S]
    reach = edges | identity  # [B, S, S]
    # Each squaring doubles the path length covered; bit_length(S-1) squarings cover S-1 edges.
    for _ in range((num_slots - 1).bit_length()):
        paths = jnp.einsum("bij,bjk->bik", reach.astype(jnp.float32), reach.astype(jnp.float32))
        reach = paths > 0  # [B, S, S]
    visit_order = jax.vmap(authors_visit_order)(edges)  # [B, S]
    # More patches first, then earlier in the visit order: one integer key per slot.
    key = slot_counts.astype(jnp.int32) * (num_slots + 1) + (num_slots - visit_order)  # [B, S]
    member_keys = jnp.where(reach, key[:, None, :], -1)  # [B, S, S]
    return jnp.argmax(member_keys, axis=-1).astype(jnp.int32)  # [B, S]


def authors_visit_order(edges: jax.Array) -> jax.Array:
    """The order in which the authors' merge loop first reaches each slot.

    Their loop starts a depth-first search at every unvisited slot with a redundant partner, in
    slot order; the search pops the last slot pushed and pushes the popped slot's unvisited
    partners in increasing order. A fixed-shape replay of that loop (a stack of S·S + 1 entries).

    Args:
        edges: `[S, S]` bool, symmetric, False on the diagonal: the redundancy graph of one video.

    Returns:
        `[S]` int32 position in the visit order; S for slots without partners (never visited).
    """
    num_slots = edges.shape[-1]
    capacity = num_slots * num_slots + 1
    slot_ids = jnp.arange(num_slots, dtype=jnp.int32)

    def searching(state):
        _, top, _, _, _, start = state
        return (top > 0) | (start < num_slots)

    def step(state):
        stack, top, visited, order, count, start = state

        def start_search(_):
            push = ~visited[start] & edges[start].any()
            return stack.at[top].set(start), top + push, visited, order, count, start + 1

        def pop(_):
            node, rest = stack[top - 1], top - 1
            fresh = ~visited[node]
            order_now = jnp.where(fresh, order.at[node].set(count), order)
            visited_now = visited.at[node].set(True)
            partners = edges[node] & ~visited_now & fresh  # [S]
            slots_at = jnp.where(partners, rest + jnp.cumsum(partners) - 1, capacity)  # [S]
            pushed = stack.at[slots_at].set(slot_ids, mode="drop")
            return pushed, rest + partners.sum(dtype=jnp.int32), visited_now, order_now, count + fresh, start

        return jax.lax.cond(top > 0, pop, start_search, None)

    initial = (
        jnp.zeros(capacity, jnp.int32),
        jnp.int32(0),
        jnp.zeros(num_slots, bool),
        jnp.full(num_slots, num_slots, jnp.int32),
        jnp.int32(0),
        jnp.int32(0),
    )
    return jax.lax.while_loop(searching, step, initial)[3]


def relabel(slot_labels: jax.Array, merge_target: jax.Array) -> jax.Array:
    """label'_p = merge_target[label_p], per video.

    Args:
        slot_labels: `[B, ...]` int slot labels.
        merge_target: `[B, S]` int32 winner slot per slot.

    Returns:
        `[B, ...]` int32 merged labels.
    """
    return jax.vmap(lambda target, label: target[label])(merge_target, slot_labels)


def count_differing_neighbours(grid_labels: jax.Array) -> jax.Array:
    """d_p = Σ_{q ∈ 10-neighbourhood(p)} [label_q ≠ label_p], missing neighbours replicate the edge.

    The neighbourhood of patch (t, i, j) is its 8 spatial neighbours in frame t plus (t−1, i, j)
    and (t+1, i, j). Out-of-range coordinates are clamped to the clip (edge replication, like
    torch's `replicate` padding in the authors' code): a missing straight neighbour is the patch
    itself, a missing diagonal one is the in-range patch beside it.

    Args:
        grid_labels: `[B, T, H, W]` int labels.

    Returns:
        `[B, T, H, W]` int32 count in [0, 10].
    """
    _, frames, height, width = grid_labels.shape
    edge = ((0, 0), (1, 1), (1, 1), (1, 1))
    padded = jnp.pad(grid_labels, edge, mode="edge")  # [B, T+2, H+2, W+2]
    differing = jnp.zeros(grid_labels.shape, jnp.int32)  # [B, T, H, W]
    for dt, di, dj in NEIGHBOUR_OFFSETS:
        neighbour = padded[
            :, 1 + dt : 1 + dt + frames, 1 + di : 1 + di + height, 1 + dj : 1 + dj + width
        ]  # [B, T, H, W]
        differing += (neighbour != grid_labels).astype(jnp.int32)
    return differing


def boundary_mask(
    enc_grid_labels: jax.Array, min_diff: int = 1, min_same: int = 1
) -> jax.Array:
    """boundary_p = (d_enc,p ≥ n_bd) ∧ (10 − d_enc,p ≥ n_noise).

    A boundary patch has at least `min_diff` differently-labelled neighbours, but at least
    `min_same` equally-labelled ones so that an isolated noise patch is not trusted.

    Args:
        enc_grid_labels: `[B, T, H, W]` merged encoder labels.
        min_diff: n_bd.
        min_same: n_noise.

    Returns:
        `[B, T, H, W]` bool.
    """
    differing = count_differing_neighbours(enc_grid_labels)  # [B, T, H, W]
    return (differing >= min_diff) & (NUM_NEIGHBOURS - differing >= min_same)


def interior_mask(dec_grid_labels: jax.Array, max_diff: int = 1) -> jax.Array:
    """interior_p = d_dec,p < n_nbd (with n_nbd = 1: all 10 neighbours share the label).

    Args:
        dec_grid_labels: `[B, T, H, W]` merged decoder labels.
        max_diff: n_nbd.

    Returns:
        `[B, T, H, W]` bool.
    """
    return count_differing_neighbours(dec_grid_labels) < max_diff


def pseudo_labels(
    enc_logits: jax.Array,
    dec_logits: jax.Array,
    grid_shape: tuple[int, int],
    merge_iou_threshold: float = 0.7,
    min_diff_boundary: int = 1,
    min_same_boundary: int = 1,
    max_diff_interior: int = 1,
) -> PseudoLabels:
    """Merged pseudo-labels and boundary/interior selections of SSync, without gradient.

    Args:
        enc_logits: `[B, T, N, S]` last slot-attention iteration's logits q·k/√d, before the
            softmax over slots.
        dec_logits: `[B, T, N, S]` decoder alpha logits on the same patch grid (see
            `resample.area_resample_to_grid` for a decoder at another resolution).
        grid_shape: (H, W) with H·W = N.
        merge_iou_threshold: τ of `merge_redundant_slots` (0.7 MOVi-C, 0.65 MOVi-E, 0.6 YT-VIS).
        min_diff_boundary: n_bd of `boundary_mask`.
        min_same_boundary: n_noise of `boundary_mask`.
        max_diff_interior: n_nbd of `interior_mask`.

    Returns:
        `PseudoLabels` with `[B, T, H, W]` labels and masks and a `[B, S]` merge map.

    Raises:
        ValueError: if the maps' shapes disagree with each other or with `grid_shape`.
    """
    _check_maps(enc_logits, dec_logits, grid_shape)
    batch, frames, _, num_slots = enc_logits.shape
    height, width = grid_shape
    enc_logits = jax.lax.stop_gradient(enc_logits)
    dec_logits = jax.lax.stop_gradient(dec_logits)

    enc_labels = labels(enc_logits)  # [B, T, N]
    dec_labels = labels(dec_logits)  # [B, T, N]
    onehot = jax.nn.one_hot(enc_labels, num_slots, dtype=jnp.int32)  # [B, T, N, S]
    slot_counts = jnp.sum(onehot, axis=(1, 2))  # [B, S]
    merge_target = merge_redundant_slots(
        slot_coverage_iou(enc_logits), slot_counts, merge_iou_threshold
    )  # [B, S]

    grid = (batch, frames, height, width)
    unmerged_enc = enc_labels.reshape(grid)  # [B, T, H, W]
    unmerged_dec = dec_labels.reshape(grid)  # [B, T, H, W]
    merged_enc = relabel(unmerged_enc, merge_target)  # [B, T, H, W]
    merged_dec = relabel(unmerged_dec, merge_target)  # [B, T, H, W]
    return PseudoLabels(
        enc_labels=merged_enc,
        dec_labels=merged_dec,
        boundary_mask=boundary_mask(merged_enc, min_diff_boundary, min_same_boundary),
        interior_mask=interior_mask(merged_dec, max_diff_interior),
        unmerged_enc_labels=unmerged_enc,
        unmerged_dec_labels=unmerged_dec,
        merge_target=merge_target,
    )


def labels_of_maps(
    enc_logits: jax.Array, dec_logits: jax.Array, **settings
) -> tuple[PseudoLabels, jax.Array, jax.Array]:
    """SSync's pseudo-labels from the model's maps on their own grids, as the objective computes them.

    The decoder's map is area-averaged onto the encoder's patch grid when the grids differ
    (`resample.maps_on_encoder_grid`), then pseudo-labelled (`pseudo_labels`).

    Args:
        enc_logits: `[B, T, H, W, S]` slot-attention logits on the encoder's patch grid.
        dec_logits: `[B, T, Hd, Wd, S]` decoder alpha logits on the decoder's grid.
        **settings: `config.ssync` (the keyword arguments of `pseudo_labels`).

    Returns:
        (pseudo-labels with `[B, T, H, W]` labels and masks, enc_logits and dec_logits `[B, T, H*W, S]`
        on the encoder's grid: the predictions the SSync losses compare with the labels).
    """
    enc_flat, dec_flat, grid = resample.maps_on_encoder_grid(enc_logits, dec_logits)
    return pseudo_labels(enc_flat, dec_flat, grid, **settings), enc_flat, dec_flat


@registry.register("ssync_boundary")
def boundary_loss(
    dec_logits: jax.Array, enc_labels: jax.Array, boundary_mask: jax.Array, temperature: float = 1.0
) -> jax.Array:
    """L_bd = Σ_{p∈boundary} Σ_s (softmax_s(dec_logits/T)_ps − onehot(enc_labels)_ps)² / (|boundary|·S).

    Args:
        dec_logits: `[B, T, N, S]` decoder alpha logits (the prediction).
        enc_labels: `[B, T, H, W]` or `[B, T, N]` merged encoder labels (the target).
        boundary_mask: `[B, T, H, W]` or `[B, T, N]` boundary patches.
        temperature: T of the softmax.

    Returns:
        Scalar, pooled over the whole batch; 0 when no patch is selected.
    """
    return _selected_softmax_squared_error(dec_logits, enc_labels, boundary_mask, temperature)


@registry.register("ssync_interior")
def interior_loss(
    enc_logits: jax.Array, dec_labels: jax.Array, interior_mask: jax.Array, temperature: float = 1.0
) -> jax.Array:
    """L_int = Σ_{p∈interior} Σ_s (softmax_s(enc_logits/T)_ps − onehot(dec_labels)_ps)² / (|interior|·S).

    Args:
        enc_logits: `[B, T, N, S]` encoder slot-attention logits (the prediction).
        dec_labels: `[B, T, H, W]` or `[B, T, N]` merged decoder labels (the target).
        interior_mask: `[B, T, H, W]` or `[B, T, N]` interior patches.
        temperature: T of the softmax.

    Returns:
        Scalar, pooled over the whole batch; 0 when no patch is selected.
    """
    return _selected_softmax_squared_error(enc_logits, dec_labels, interior_mask, temperature)


def ssync_losses(
    enc_logits: jax.Array, dec_logits: jax.Array, labels: PseudoLabels, temperature: float = 1.0
) -> dict[str, jax.Array]:
    """Both SSync losses for pseudo-labels from `pseudo_labels`.

    Args:
        enc_logits: `[B, T, N, S]` encoder logits (prediction of the interior loss).
        dec_logits: `[B, T, N, S]` decoder alpha logits (prediction of the boundary loss).
        labels: `PseudoLabels` of the same maps.
        temperature: T of both softmaxes.

    Returns:
        {"boundary": scalar, "interior": scalar}.
    """
    boundary = boundary_loss(dec_logits, labels.enc_labels, labels.boundary_mask, temperature)
    interior = interior_loss(enc_logits, labels.dec_labels, labels.interior_mask, temperature)
    return {"boundary": boundary, "interior": interior}


def ssync_statistics(labels: PseudoLabels) -> dict[str, jax.Array]:
    """Scalars worth logging: how much of the batch each loss sees and how many slots merged.

    Args:
        labels: `PseudoLabels` of a batch.

    Returns:
        {"boundary_fraction", "interior_fraction": fraction of all patches selected,
         "merged_slots": slots merged into another, averaged over videos}.
    """
    num_slots = labels.merge_target.shape[-1]
    merged = labels.merge_target != jnp.arange(num_slots, dtype=jnp.int32)  # [B, S]
    return {
        "boundary_fraction": jnp.mean(labels.boundary_mask.astype(jnp.float32)),
        "interior_fraction": jnp.mean(labels.interior_mask.astype(jnp.float32)),
        "merged_slots": jnp.mean(jnp.sum(merged, axis=-1).astype(jnp.float32)),
    }


def _selected_softmax_squared_error(
    logits: jax.Array, target_labels: jax.Array, mask: jax.Array, temperature: float
) -> jax.Array:
    """Σ_{p∈mask} Σ_s (softmax_s(logits/T)_ps − onehot(target)_ps)² / (|mask|·S), 0 if mask is empty."""
    if isinstance(temperature, (int, float)) and temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    patches_shape = logits.shape[:-1]  # (B, T, N)
    num_slots = logits.shape[-1]
    target_labels = jax.lax.stop_gradient(target_labels).reshape(patches_shape)  # [B, T, N]
    mask = jax.lax.stop_gradient(mask).reshape(patches_shape)  # [B, T, N]
    probs = jax.nn.softmax(logits.astype(jnp.float32) / temperature, axis=-1)  # [B, T, N, S]
    onehot = jax.nn.one_hot(target_labels, num_slots, dtype=jnp.float32)  # [B, T, N, S]
    per_patch = jnp.sum(jnp.square(probs - onehot), axis=-1)  # [B, T, N]
    total = jnp.sum(jnp.where(mask, per_patch, 0.0))
    count = jnp.sum(mask.astype(jnp.float32))
    # An empty selection gives 0 (and zero gradient) instead of 0/0.
    return total / (jnp.maximum(count, 1.0) * num_slots)


def _check_maps(enc_logits: jax.Array, dec_logits: jax.Array, grid_shape: tuple[int, int]) -> None:
    if enc_logits.ndim != 4:
        raise ValueError(
            f"enc_logits must be [B, T, N, S], got shape {enc_logits.shape}; add a frame axis "
            "of size 1 for images."
        )
    if dec_logits.shape != enc_logits.shape:
        raise ValueError(
            f"dec_logits shape {dec_logits.shape} differs from enc_logits shape "
            f"{enc_logits.shape}; resample the decoder map to the encoder grid with "
            "ssync_jax.objectives.resample.area_resample_to_grid."
        )
    height, width = grid_shape
    if height * width != enc_logits.shape[2]:
        raise ValueError(
            f"grid_shape {tuple(grid_shape)} has {height * width} patches but the maps have "
            f"N={enc_logits.shape[2]}; pass the encoder's patch grid (H, W) with H*W = N."
        )
