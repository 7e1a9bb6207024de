"""Evaluation metrics as the SSync paper reports them: FG-ARI, mBO and Hungarian mIoU.

Every metric compares ground-truth ids with predicted segment ids, `[B, T, H, W]` ints, either
per video (all frames of a video pooled into one clustering, the paper's "video" numbers) or per
frame (`per_frame=True`, the "image" numbers). Ground-truth id 0 is background: it is left out
of FG-ARI entirely and is never an object for mBO/mIoU, although predicted segments keep the
background pixels they cover (so covering background lowers a segment's IoU). `ari` scores every
pixel, background included, for the protocols that report it (SAVi's `eval_ari`).

All metrics are read off one contingency table n_ik = #pixels with true id i and predicted
id k, built with one-hot einsums so the shapes stay fixed (`num_true`, `num_pred` are static).
The einsum is exact: one-hot entries are exact in every matmul precision (bf16, tf32, f32) and
float32 accumulation counts exactly up to 2^24 pixels per video (24 frames of 836x836).

Each metric returns `(values, valid)`: `valid` is False for videos (frames) without any
foreground object, whose value (set to 0) must be skipped. Evaluation padding from the pipeline is
all background, so it comes out invalid too. `ValidAverage` accumulates values over valid entries
only, as a `clu.metrics.Metric`.

Ids outside `[0, num_true)` / `[0, num_pred)` match no one-hot column and drop out silently: size
`num_true` as the largest id + 1 (MOVi-C: 11, MOVi-E: 24) and `num_pred` as the slot count.
"""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from clu import metrics as clu_metrics


def _check_ids(true_ids: jax.Array, pred_ids: jax.Array, num_true: int, num_pred: int) -> None:
    """Raises ValueError for id maps the metrics cannot compare."""
    if true_ids.ndim != 4 or true_ids.shape != pred_ids.shape:
        raise ValueError(
            f"true_ids and pred_ids must both be [B, T, H, W], got {true_ids.shape} and "
            f"{pred_ids.shape}; add a time axis of 1 for images and resize predictions to the "
            "label resolution with masks_to_ids."
        )
    for name, ids in (("true_ids", true_ids), ("pred_ids", pred_ids)):
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise ValueError(f"{name} must hold integer ids, got dtype {ids.dtype}; argmax first.")
    if num_true < 2 or num_pred < 1:
        raise ValueError(
            "need num_true >= 2 (background + objects) and num_pred >= 1, got "
            f"num_true={num_true}, num_pred={num_pred}."
        )


def contingency_table(
    true_ids: jax.Array, pred_ids: jax.Array, num_true: int, num_pred: int, per_frame: bool = False
) -> jax.Array:
    """n_ik = Σ_p [true_p = i]·[pred_p = k], pixels p pooled over a video (or over one frame).

    Args:
        true_ids: `[B, T, H, W]` int ground-truth ids in [0, num_true), 0 = background.
        pred_ids: `[B, T, H, W]` int predicted segment ids in [0, num_pred).
        num_true: number of ground-truth ids, background included (static).
        num_pred: number of predicted segments, e.g. slots (static).
        per_frame: one table per frame instead of one per video.

    Returns:
        `[B, G, num_true, num_pred]` float32 pixel counts, G = T if per_frame else 1.
    """
    _check_ids(true_ids, pred_ids, num_true, num_pred)
    batch, frames = true_ids.shape[:2]
    groups = frames if per_frame else 1
    true_onehot = jax.nn.one_hot(true_ids.reshape(batch, groups, -1), num_true)  # [B, G, P, I]
    pred_onehot = jax.nn.one_hot(pred_ids.reshape(batch, groups, -1), num_pred)  # [B, G, P, K]
    return jnp.einsum("bgpi,bgpk->bgik", true_onehot, pred_onehot)  # [B, G, I, K]


def _ungroup(values: jax.Array, per_frame: bool) -> jax.Array:
    """`[B, G, ...]` -> `[B, T, ...]` per frame, `[B, ...]` per video (G = 1)."""
    return values if per_frame else values[:, 0]


def adjusted_rand_index(table: jax.Array) -> jax.Array:
    """ARI = 2(tp·tn − fn·fp) / ((tp+fn)(fn+tn) + (tp+fp)(fp+tn)) from n_ik; 1 if fn = fp = 0.

    tp, fn, fp, tn count (ordered) pixel pairs in the same true cluster and same prediction, same
    true / different prediction, and so on. Each is a sum of non-negative terms, e.g.
    fn = Σ_ik n_ik (a_i − n_ik), so float32 loses no precision to cancellation. Degenerate tables
    follow sklearn's `adjusted_rand_score`: when no pair disagrees (fn = fp = 0: both clusterings
    one cluster, both all singletons, or at most one pixel) the ARI is 1; the denominator is zero
    only in those cases. One true cluster split into several predictions scores 0.

    Args:
        table: `[..., I, K]` contingency counts n_ik.

    Returns:
        `[...]` float32 ARI.
    """
    true_sizes = table.sum(-1, keepdims=True)  # [..., I, 1]  a_i
    pred_sizes = table.sum(-2, keepdims=True)  # [..., 1, K]  b_k
    total = table.sum((-2, -1), keepdims=True)  # [..., 1, 1]  n
    true_positive = jnp.sum(table * (table - 1), (-2, -1))  # [...]
    false_negative = jnp.sum(table * (true_sizes - table), (-2, -1))  # [...]
    false_positive = jnp.sum(table * (pred_sizes - table), (-2, -1))  # [...]
    true_negative = jnp.sum(table * (total - true_sizes - pred_sizes + table), (-2, -1))  # [...]
    numerator = 2 * (true_positive * true_negative - false_negative * false_positive)  # [...]
    denominator = (true_positive + false_negative) * (false_negative + true_negative) + (
        true_positive + false_positive
    ) * (false_positive + true_negative)  # [...]
    agree = (false_negative == 0) & (false_positive == 0)  # [...]
    return jnp.where(agree, 1.0, numerator / jnp.where(agree, 1.0, denominator))


EMPTY_FG_ARI = ("skip", "one")


def fg_ari(
    true_ids: jax.Array,
    pred_ids: jax.Array,
    num_true: int,
    num_pred: int,
    per_frame: bool = False,
    without_foreground: str = "skip",
) -> tuple[jax.Array, jax.Array]:
    """FG-ARI = ARI(true_p, pred_p) over the pixels p with true_p ≠ 0, per video or per frame.

    Args:
        true_ids: `[B, T, H, W]` int ground-truth ids in [0, num_true), 0 = background.
        pred_ids: `[B, T, H, W]` int predicted segment ids in [0, num_pred).
        num_true: number of ground-truth ids, background included (static).
        num_pred: number of predicted segments (static).
        per_frame: image FG-ARI (one value per frame) instead of video FG-ARI.
        without_foreground: a frame (video) without foreground pixels is left out ("skip") or
            scores 1.0 ("one"): the authors' `AdjustedRandIndex` counts it, with the degenerate
            ARI of two empty clusterings, 1.

    Returns:
        values: `[B]` (or `[B, T]`) float32 FG-ARI, 0 where invalid.
        valid: same shape, bool, False where there is no foreground pixel ("skip" only).
    """
    if without_foreground not in EMPTY_FG_ARI:
        raise ValueError(f"without_foreground must be one of {EMPTY_FG_ARI}, got {without_foreground!r}.")
    table = contingency_table(true_ids, pred_ids, num_true, num_pred, per_frame)[..., 1:, :]
    has_foreground = table.sum((-2, -1)) > 0  # [B, G]
    if without_foreground == "one":
        values = jnp.where(has_foreground, adjusted_rand_index(table), 1.0)  # [B, G]
        valid = jnp.ones_like(has_foreground)
    else:
        values = jnp.where(has_foreground, adjusted_rand_index(table), 0.0)  # [B, G]
        valid = has_foreground
    return _ungroup(values, per_frame), _ungroup(valid, per_frame)


def ari(
    true_ids: jax.Array, pred_ids: jax.Array, num_true: int, num_pred: int, per_frame: bool = False
) -> tuple[jax.Array, jax.Array]:
    """ARI = ARI(true_p, pred_p) over every pixel p, background included, per video or per frame.

    SAVi's `Ari` ("eval_ari") and the authors' `VideoARI(ignore_background=False)`: the background
    is one more true cluster, so a model that splits the background, or merges it with objects, loses.

    Args:
        true_ids: `[B, T, H, W]` int ground-truth ids in [0, num_true), 0 = background.
        pred_ids: `[B, T, H, W]` int predicted segment ids in [0, num_pred).
        num_true: number of ground-truth ids, background included (static).
        num_pred: number of predicted segments (static).
        per_frame: one value per frame instead of one per video.

    Returns:
        values: `[B]` (or `[B, T]`) float32 ARI.
        valid: same shape, bool, False only where no pixel has an id in range (never for real frames;
            the caller masks evaluation padding, which is all background).
    """
    table = contingency_table(true_ids, pred_ids, num_true, num_pred, per_frame)  # [B, G, I, K]
    valid = table.sum((-2, -1)) > 0  # [B, G]
    values = jnp.where(valid, adjusted_rand_index(table), 0.0)  # [B, G]
    return _ungroup(values, per_frame), _ungroup(valid, per_frame)


def iou_matrix(
    true_ids: jax.Array, pred_ids: jax.Array, num_true: int, num_pred: int, per_frame: bool = False
) -> tuple[jax.Array, jax.Array]:
    """IoU_jk = |G_j ∩ P_k| / |G_j ∪ P_k| for every object j ≥ 1 and predicted segment k.

    Predicted segments keep the background pixels they cover: |P_k| counts all pixels.

    Args:
        true_ids: `[B, T, H, W]` int ground-truth ids in [0, num_true), 0 = background.
        pred_ids: `[B, T, H, W]` int predicted segment ids in [0, num_pred).
        num_true: number of ground-truth ids, background included (static).
        num_pred: number of predicted segments (static).
        per_frame: objects and segments per frame instead of pooled over the video.

    Returns:
        iou: `[B, num_true - 1, num_pred]` (or `[B, T, num_true - 1, num_pred]`) float32, 0 for
            absent objects.
        present: `[B, num_true - 1]` (or `[B, T, num_true - 1]`) bool, object j has pixels.
    """
    table = contingency_table(true_ids, pred_ids, num_true, num_pred, per_frame)  # [B, G, I, K]
    segment_sizes = table.sum(-2, keepdims=True)  # [B, G, 1, K]
    intersection = table[..., 1:, :]  # [B, G, I-1, K]
    object_sizes = intersection.sum(-1, keepdims=True)  # [B, G, I-1, 1]
    union = object_sizes + segment_sizes - intersection  # [B, G, I-1, K]
    iou = intersection / jnp.maximum(union, 1.0)  # [B, G, I-1, K]
    present = object_sizes[..., 0] > 0  # [B, G, I-1]
    return _ungroup(iou, per_frame), _ungroup(present, per_frame)


def mbo(
    true_ids: jax.Array, pred_ids: jax.Array, num_true: int, num_pred: int, per_frame: bool = False
) -> tuple[jax.Array, jax.Array]:
    """mBO = (1/|J|) Σ_{j ∈ J} max_k IoU_jk over the objects J present, per video or per frame.

    Args:
        true_ids: `[B, T, H, W]` int ground-truth ids in [0, num_true), 0 = background.
        pred_ids: `[B, T, H, W]` int predicted segment ids in [0, num_pred).
        num_true: number of ground-truth ids, background included (static).
        num_pred: number of predicted segments (static).
        per_frame: image mBO (one value per frame) instead of video mBO.

    Returns:
        values: `[B]` (or `[B, T]`) float32 mBO, 0 where invalid.
        valid: same shape, bool, False where no object is present.
    """
    iou, present = iou_matrix(true_ids, pred_ids, num_true, num_pred, per_frame)
    best_overlap = jnp.where(present, iou.max(-1), 0.0)  # [B, (T,) J]
    num_present = present.sum(-1)  # [B, (T)]
    valid = num_present > 0  # [B, (T)]
    return best_overlap.sum(-1) / jnp.maximum(num_present, 1), valid


def hungarian_miou(iou: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mIoU = (1/|J|) max_σ Σ_{j ∈ J} IoU_jσ(j), σ one-to-one from present objects to segments.

    Runs on the host: scipy's `linear_sum_assignment` is not jit-able. Present objects left
    without a segment (more objects than segments) count as IoU 0.

    Args:
        iou: `[..., J, K]` IoU matrix from `iou_matrix` (jax or numpy).
        present: `[..., J]` bool, which objects are present.

    Returns:
        values: `[...]` float64 numpy mIoU, 0 where invalid.
        valid: `[...]` bool numpy, False where no object is present.
    """
    iou = np.asarray(iou, np.float64)
    present = np.asarray(present, bool)
    values = np.zeros(present.shape[:-1])
    for index in np.ndindex(values.shape):
        scores = iou[index][present[index]]  # [J present, K]
        if len(scores):
            rows, cols = scipy.optimize.linear_sum_assignment(scores, maximize=True)
            values[index] = scores[rows, cols].sum() / len(scores)
    return values, present.any(-1)


def miou(
    true_ids: jax.Array, pred_ids: jax.Array, num_true: int, num_pred: int, per_frame: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian mIoU: `iou_matrix` in jax, then `hungarian_miou` on the host (not jit-able).

    Args:
        true_ids: `[B, T, H, W]` int ground-truth ids in [0, num_true), 0 = background.
        pred_ids: `[B, T, H, W]` int predicted segment ids in [0, num_pred).
        num_true: number of ground-truth ids, background included.
        num_pred: number of predicted segments.
        per_frame: objects matched per frame instead of once per video.

    Returns:
        values: `[B]` (or `[B, T]`) numpy mIoU, 0 where invalid.
        valid: same shape, bool, False where no object is present.
    """
    iou, present = jax.device_get(iou_matrix(true_ids, pred_ids, num_true, num_pred, per_frame))
    return hungarian_miou(iou, present)


def masks_to_ids(masks: jax.Array, label_size: tuple[int, int]) -> jax.Array:
    """ids_p = argmax_s bilinear_resize(masks)_ps: masks on their grid -> segment ids at label resolution.

    Bilinear with half-pixel centres and `antialias=False` is what the authors' code does
    (`torch.nn.functional.interpolate(mode="bilinear")`, which never antialiases). Upsampling from
    the patch grid, the usual case, is the same either way; antialiasing would only change a
    downsample, where it would blur the masks away from the authors' predictions. (Checked against
    torch: equal to 1e-7 up and down; with antialias=True a downsample differs by up to 0.3.)

    Args:
        masks: `[B, T, h, w, S]` masks (or logits) on their grid.
        label_size: (H, W) of the ground-truth labels.

    Returns:
        `[B, T, H, W]` int32 segment ids (first segment on ties).
    """
    if masks.ndim != 5:
        raise ValueError(f"masks must be [B, T, h, w, S] on their grid, got shape {masks.shape}.")
    batch, frames, _, _, num_slots = masks.shape
    resized = jax.image.resize(
        masks.astype(jnp.float32),
        (batch, frames, *label_size, num_slots),
        method="bilinear",
        antialias=False,
    )  # [B, T, H, W, S]
    return jnp.argmax(resized, axis=-1).astype(jnp.int32)  # [B, T, H, W]


@flax.struct.dataclass
class ValidAverage(clu_metrics.Average):
    """mean = total / count, total = Σ values·valid, count = Σ valid (nan while count is 0).

    `clu.metrics.Average` with the metric's own `valid` as mask, so invalid entries (videos or
    frames without objects, evaluation padding) never enter the mean, whatever their value.
    Merges, reduces over devices and computes like `Average`.
    """

    @classmethod
    def from_model_output(cls, values: jax.Array, valid: jax.Array, **_) -> ValidAverage:
        """Accumulator for one batch.

        Args:
            values: `[B]` or `[B, T]` metric values.
            valid: same shape, bool, which values count.

        Returns:
            The batch's `ValidAverage`.
        """
        if values.shape != valid.shape:
            raise ValueError(
                f"values and valid must have the same shape, got {values.shape} and {valid.shape}."
            )
        return super().from_model_output(values, mask=valid)

    @classmethod
    def from_outputs(cls, values_name: str, valid_name: str) -> type[ValidAverage]:
        """A `ValidAverage` that reads two named model outputs, for `clu.metrics.Collection`.

        Args:
            values_name: model output holding the values, e.g. "video_fg_ari".
            valid_name: model output holding their validity, e.g. "video_fg_ari_valid".

        Returns:
            A `ValidAverage` subclass whose `from_model_output(**outputs)` picks both.
        """

        @flax.struct.dataclass
        class FromOutputs(cls):
            @classmethod
            def from_model_output(cls, **model_output: jax.Array) -> ValidAverage:
                return super().from_model_output(
                    jnp.asarray(model_output[values_name]), jnp.asarray(model_output[valid_name])
                )

        return FromOutputs
