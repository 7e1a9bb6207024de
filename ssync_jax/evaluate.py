"""Evaluation on whole videos: the model run chunk by chunk (`ssync_jax.rollout`), then the paper's metrics.

Predicted segments are the decoder masks (and, reported with an `enc_` prefix, the encoder's slot
attention) resized bilinearly to the label resolution, then argmax (`rollout.segment`). Where the
labels are depends on `config.data.eval_resolution`: upsampled to the model input (the authors'
protocol) or at their own resolution.

Metrics (means over valid videos or frames; padding never counts, videos and frames without
objects as `config.eval.fg_ari_without_foreground` says for FG-ARI, never for mBO and mIoU):
`video_fg_ari`, `image_fg_ari`, `video_mbo`, `image_mbo`, `video_miou`, `image_miou`, the same
with `enc_`, and `num_videos`.

Beside them, what the model's maps and reconstruction look like to the objective, per video:
`reconstruction_mse` (the reconstruction loss over the whole video, for targets the frames give),
and SSync's selections computed as training computes them, over clips of `config.data.chunk_length`
frames with `config.ssync`'s settings, also for models trained without SSync:
`ssync_boundary_fraction` and `ssync_interior_fraction` (shares of all patches),
`ssync_merged_slots` (slots merged per clip). And whether the maps' argmax says all they carry:
`enc_map_entropy` and `dec_map_entropy` (the entropy of each position's softmax over slots, as a
fraction of log S: 0 one slot, 1 all alike), `enc_slots_used` and `dec_slots_used` (slots that win
at least one position of a frame) and `hard_reconstruction_mse` (the reconstruction error when each
position is decoded by its argmax slot alone, against `reconstruction_mse` of the soft mixture).
"""

import functools
from collections.abc import Iterable, Mapping

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from clu import metrics as clu_metrics
from flax import linen as nn
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from ssync_jax import errors, metrics, rollout, sharding
from ssync_jax.data import pipeline
from ssync_jax.objectives import ssync

PREDICTIONS = {"": "dec_ids", "enc_": "enc_ids"}
LEVELS = {"video": False, "image": True}
METRICS = ("fg_ari", "mbo", "miou")
NAMES = tuple(f"{prefix}{level}_{metric}" for prefix in PREDICTIONS for level in LEVELS for metric in METRICS)
# Per-video averages over frames of what the objective sees (`objective_statistics`).
OBJECTIVE_NAMES = (
    "reconstruction_mse",
    "ssync_boundary_fraction",
    "ssync_interior_fraction",
    "ssync_merged_slots",
    "hard_reconstruction_mse",
    "enc_map_entropy",
    "dec_map_entropy",
    "enc_slots_used",
    "dec_slots_used",
)

EvalMetrics = clu_metrics.Collection.create(
    **{name: metrics.ValidAverage.from_outputs(name, name + "_valid") for name in NAMES + OBJECTIVE_NAMES}
)


class Evaluator:
    """Runs the model over an evaluation dataset and averages the metrics of `NAMES`.

    Attributes:
        model: the video model.
        config: the experiment config (reads `eval`, `model.num_slots`, `seed`).
        mesh: the `data` mesh; batches are sharded over it, metrics come back replicated.
    """

    def __init__(self, model: nn.Module, config: ml_collections.ConfigDict, mesh: Mesh):
        self.model = model
        self.config = config
        self.mesh = mesh
        self.rollout = rollout.Rollout(model, config.eval.chunk_length, config.seed)
        self._segment = jax.jit(rollout.segment, static_argnames="size")
        scores = configured_scores(config, config.eval.num_true_ids, config.model.num_slots)
        self._scores = jax.jit(scores, out_shardings=sharding.replicated(mesh))
        statistics = functools.partial(
            objective_statistics, clip_length=config.data.chunk_length, ssync_settings=config.ssync.to_dict()
        )
        self._statistics = jax.jit(statistics, out_shardings=sharding.replicated(mesh))

    def _batch_metrics(self, params, local_batch: Mapping[str, np.ndarray]) -> clu_metrics.Collection:
        num_true = self.config.eval.num_true_ids
        if local_batch["segmentations"].max() >= num_true:
            raise errors.ConfigError(
                f"A validation video has object id {local_batch['segmentations'].max()}, but "
                f"config.eval.num_true_ids={num_true}; set it to at least the largest id + 1 "
                "(MOVi-C 11, MOVi-E 24)."
            )
        keys = ("video", "segmentations", "valid", "boxes")
        batch = sharding.global_batch({k: local_batch[k] for k in keys if k in local_batch}, self.mesh)
        label_size = tuple(batch["segmentations"].shape[2:4])
        pieces, statistics = [], []
        for frames, outputs in self.rollout.chunks(params, batch["video"], conditioning=batch.get("boxes")):
            pieces.append(self._segment(outputs["dec_masks"], outputs["enc_attn"], size=label_size))
            statistics.append((frames.stop - frames.start, self._statistics(outputs)))
        predictions = {key: jnp.concatenate([p[key] for p in pieces], axis=1) for key in PREDICTIONS.values()}
        scores = batch_scores(self._scores, batch["segmentations"], predictions, batch["valid"])
        # Each chunk's per-video averages, weighted by its frames: per-video averages over all frames.
        total_frames = sum(count for count, _ in statistics)
        valid = np.asarray(jax.device_get(batch["valid"]))
        for name in OBJECTIVE_NAMES:
            values = sum(count * np.asarray(jax.device_get(chunk[name])) for count, chunk in statistics)
            scores[name] = (values / total_frames).astype(np.float32)
            scores[name + "_valid"] = valid & np.isfinite(scores[name])
        return EvalMetrics.single_from_model_output(**scores)

    def evaluate(self, params, dataset: Iterable[Mapping[str, np.ndarray]]) -> dict[str, float]:
        """Metrics over one pass of `dataset` (each process iterating its own shard).

        Args:
            params: the model params (sharded or replicated over the mesh).
            dataset: evaluation batches from `ssync_jax.data.pipeline.eval_dataset`.

        Returns:
            {name: mean} for `NAMES` and "num_videos" (valid, i.e. non-padding, videos).
        """
        total, num_videos = None, 0
        iterator = iter(dataset)
        try:
            for local_batch in iterator:
                batch_metrics = self._batch_metrics(params, local_batch)
                total = batch_metrics if total is None else total.merge(batch_metrics)
                num_videos += int(local_batch["valid"].sum())
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        if total is None:
            raise errors.ConfigError("The evaluation dataset yielded no batch; check config.data.eval_split.")
        results = {name: float(value) for name, value in total.compute().items()}
        # A model whose target the evaluation batches do not carry (depth, flow) has no reconstruction error.
        results = {k: v for k, v in results.items() if k not in OBJECTIVE_NAMES or np.isfinite(v)}
        results["num_videos"] = int(np.sum(multihost_utils.process_allgather(np.int32(num_videos))))
        return results


def configured_scores(config: ml_collections.ConfigDict, num_true: int, num_pred: int):
    """`per_video_scores` for `num_true` label ids and `num_pred` slots, with the config's rule
    (`config.eval.fg_ari_without_foreground`) for videos and frames without objects."""
    return functools.partial(
        per_video_scores,
        num_true=num_true,
        num_pred=num_pred,
        video_without_foreground=config.eval.fg_ari_without_foreground,
        frame_without_foreground=config.eval.fg_ari_without_foreground,
    )


def per_video_scores(
    true_ids: jax.Array,
    predictions: Mapping[str, jax.Array],
    valid: jax.Array,
    *,
    num_true: int,
    num_pred: int,
    video_without_foreground: str,
    frame_without_foreground: str,
    with_ari: bool = False,
) -> dict[str, jax.Array]:
    """Per-video and per-frame FG-ARI and mBO, and the IoU matrices mIoU needs, of one batch (jit-able).

    Args:
        true_ids: `[B, T, H, W]` ground-truth ids.
        predictions: {"dec_ids", "enc_ids"}: `[B, T, H, W]` predicted segment ids.
        valid: `[B]` False for padding.
        num_true: `config.eval.num_true_ids`.
        num_pred: the slot count.
        video_without_foreground: videos without objects: "skip" or "one" (`ssync_jax.metrics.fg_ari`).
        frame_without_foreground: the same for frames.
        with_ari: also the video ARI with the background ("<prefix>video_ari").

    Returns:
        "<name>" values and "<name>_valid" masks for the FG-ARI, mBO (and ARI) names, and
        "<prefix><level>_iou" / "_present" for `batch_scores` to turn into mIoU on the host.
    """
    out = {}
    for prefix, key in PREDICTIONS.items():
        pred_ids = predictions[key]
        for level, per_frame in LEVELS.items():
            real = valid[:, None] if per_frame else valid  # [B, 1] or [B]
            without = frame_without_foreground if per_frame else video_without_foreground
            scores = {
                "fg_ari": metrics.fg_ari(true_ids, pred_ids, num_true, num_pred, per_frame, without),
                "mbo": metrics.mbo(true_ids, pred_ids, num_true, num_pred, per_frame),
            }
            if with_ari and not per_frame:
                scores["ari"] = metrics.ari(true_ids, pred_ids, num_true, num_pred)
            for metric, (values, ok) in scores.items():
                out[f"{prefix}{level}_{metric}"] = values
                out[f"{prefix}{level}_{metric}_valid"] = ok & real
            iou, present = metrics.iou_matrix(true_ids, pred_ids, num_true, num_pred, per_frame)
            out[f"{prefix}{level}_iou"] = iou
            out[f"{prefix}{level}_present"] = present & real[..., None]
    return out


def objective_statistics(
    outputs: Mapping[str, jax.Array], *, clip_length: int, ssync_settings: Mapping[str, float | int]
) -> dict[str, jax.Array]:
    """Per-video averages over one chunk's frames of what the training objective sees (jit-able).

    Args:
        outputs: the video model's outputs for a chunk of t frames: "enc_logits", "dec_logits" on
            their grids, "reconstruction", and "target" when the model was given its target.
        clip_length: the training clips' frames (`config.data.chunk_length`); SSync's selections are
            computed on clips of this many frames, as in training (the whole chunk when t is not a
            multiple of it).
        ssync_settings: `config.ssync`.

    Returns:
        `[B]` float32 each: "reconstruction_mse" and "hard_reconstruction_mse" (nan without a target
        or without that reconstruction),
        "ssync_boundary_fraction", "ssync_interior_fraction" (shares of the chunk's patches),
        "ssync_merged_slots" (per clip), "enc_map_entropy", "dec_map_entropy", "enc_slots_used",
        "dec_slots_used" (per frame; see the module docstring).
    """
    enc_logits, dec_logits = outputs["enc_logits"], outputs["dec_logits"]
    batch, frames = enc_logits.shape[:2]
    clip = clip_length if frames % clip_length == 0 else frames

    def as_clips(maps: jax.Array) -> jax.Array:  # [B, t, ...] -> [B * t / clip, clip, ...]
        return maps.reshape(batch * (frames // clip), clip, *maps.shape[2:])

    targets, _, _ = ssync.targets_of_maps(as_clips(enc_logits), as_clips(dec_logits), **ssync_settings)
    num_slots = targets.merge_target.shape[-1]
    merged = jnp.sum(targets.merge_target != jnp.arange(num_slots), axis=-1)  # [B * clips]
    statistics = {
        "ssync_boundary_fraction": jnp.mean(targets.boundary_mask.reshape(batch, -1), axis=1, dtype=jnp.float32),
        "ssync_interior_fraction": jnp.mean(targets.interior_mask.reshape(batch, -1), axis=1, dtype=jnp.float32),
        "ssync_merged_slots": jnp.mean(merged.reshape(batch, -1), axis=1, dtype=jnp.float32),
    }
    for prefix, logits in (("enc", enc_logits), ("dec", dec_logits)):
        statistics[f"{prefix}_map_entropy"] = map_entropy(logits)
        statistics[f"{prefix}_slots_used"] = slots_used(logits)
    for name, decoded in (("reconstruction_mse", "reconstruction"), ("hard_reconstruction_mse", "hard_reconstruction")):
        if "target" in outputs and decoded in outputs:
            error = jnp.square(outputs[decoded].astype(jnp.float32) - outputs["target"].astype(jnp.float32))
            statistics[name] = jnp.mean(error.reshape(batch, -1), axis=1)
        else:
            statistics[name] = jnp.full((batch,), jnp.nan, jnp.float32)
    return statistics


def map_entropy(logits: jax.Array) -> jax.Array:
    """Per video, the mean over positions of H(softmax over slots) / log S (0 for a single slot).

    Args:
        logits: `[B, t, h, w, S]` a map's logits.

    Returns:
        `[B]` float32 in [0, 1].
    """
    num_slots = logits.shape[-1]
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    entropy = -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)  # [B, t, h, w]
    normalised = entropy / jnp.log(num_slots) if num_slots > 1 else jnp.zeros_like(entropy)
    return jnp.mean(normalised.reshape(logits.shape[0], -1), axis=1)


def slots_used(logits: jax.Array) -> jax.Array:
    """Per video, the mean over frames of how many slots are the argmax of at least one position.

    Args:
        logits: `[B, t, h, w, S]` a map's logits.

    Returns:
        `[B]` float32 in [1, S].
    """
    winners = jax.nn.one_hot(jnp.argmax(logits, axis=-1), logits.shape[-1], dtype=jnp.float32)  # [B, t, h, w, S]
    used = jnp.sum(jnp.max(winners, axis=(2, 3)), axis=-1)  # [B, t]
    return jnp.mean(used, axis=1)


def batch_scores(
    scores_fn, true_ids: jax.Array, predictions: Mapping[str, jax.Array], valid: jax.Array
) -> dict[str, np.ndarray]:
    """Every metric of `NAMES` for one batch, with its validity: `scores_fn` (a jitted
    `per_video_scores`) on the devices, then Hungarian matching for mIoU on the host."""
    scores = jax.device_get(scores_fn(true_ids, predictions, valid))
    for prefix in PREDICTIONS:
        for level in LEVELS:
            iou, present = scores.pop(f"{prefix}{level}_iou"), scores.pop(f"{prefix}{level}_present")
            values, ok = metrics.hungarian_miou(iou, present)
            scores[f"{prefix}{level}_miou"] = values.astype(np.float32)
            scores[f"{prefix}{level}_miou_valid"] = ok
    return scores


def evaluation_dataset(config: ml_collections.ConfigDict) -> grain.IterDataset:
    """The validation pass `config.data` describes (a fresh one per evaluation)."""
    return pipeline.dataset_from_config(config.data, train=False, seed=config.seed)

