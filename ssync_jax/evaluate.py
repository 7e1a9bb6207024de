"""Evaluation on whole videos: the model run chunk by chunk (`ssync_jax.rollout`), its masks scored under protocols.

    evaluator = Evaluator(model, config, mesh)                      # scores config.eval.protocol
    results = evaluator.evaluate(params, evaluation_dataset(config))  # {name: mean}: what training logs
    every = Evaluator(model, config, mesh, select_protocols("all")).run(params, evaluation_dataset(config, "test"))

A protocol (`Protocol`) is how one project scores predicted masks: at which resolution, what a video
or frame without objects scores, whether the first frame counts. The evaluation pass reads the
labels at their own resolution (`evaluation_config`); each protocol resizes them nearest-exact
(`transforms.resize_nearest`, half-pixel centres) to where it scores (`scoring_size`), and the
predicted segments are the decoder masks (and, reported with an `enc_` prefix, the encoder's slot
attention) resized bilinearly from their grid to the same size, then argmax (`rollout.segment`,
torch's `interpolate(mode="bilinear")`). The model runs once, whatever the number of protocols.

Scores of each protocol (means over valid videos or frames; padding never counts, videos and frames
without objects as the protocol says for FG-ARI, never for mBO and mIoU): `video_fg_ari`,
`image_fg_ari` (per frame), `video_ari` (the background included), `video_mbo`, `image_mbo`,
`video_miou`, `image_miou` (Hungarian matching), the same with `enc_`. `Evaluator.evaluate` reports
`NAMES` (all but the ARI) of its first protocol, by default `config.eval.protocol`'s, and `num_videos`.

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

The protocols (`PROTOCOLS`), and the code each follows (at the commits named):

config: the run's own (`config_protocol`, the default of `config.eval.protocol`): the labels where
    `config.data.eval_resolution` puts them ("model_input" or their own resolution, "dataset"), videos
    and frames without objects as `config.eval.fg_ari_without_foreground` says.
ssync: SSync / SlotContrast, the authors' code (github wjun0830/SSync @4cee41a). At the model input (336² for
    configs/movi_c.py): `configs/SSync/movi_c.yaml` (val_pipeline input_size 336, no mask_size, so
    `SSync/data/transforms.py` resizes segmentations to the input size, `Resize(mode="nearest-exact")`);
    `SSync/models.py` (mask resizers `resize_mode="bilinear"` to the segmentations' size, then
    `SoftToHardMask`, an argmax). Frames (videos) without objects score FG-ARI 1: `SSync/metrics.py`
    `AdjustedRandIndex._update` drops only samples with no true mask at all, counted before the
    background channel is removed, and `adjusted_rand_index` returns 1 where its denominator is 0;
    `IntersectionOverUnion._update` (mBO) skips them. This equals `python main.py --mode eval` with
    `data.eval_resolution="model_input"`, `eval.fg_ari_without_foreground="one"` (configs/movi_c.py).
videosaur: VideoSAUR (github martius-lab/videosaur @5d09311): the same code as the row above (SSync is built
    on it: `videosaur/data/transforms.py`, `videosaur/models.py`, `videosaur/metrics.py`), at 224²
    (`configs/videosaur/movi_c.yml`, input_size 224).
dinosaur: DINOSAUR's COCO/VOC mask protocol (github amazon-science/object-centric-learning-framework
    @0a97292) at 320²: `configs/evaluation/projects/bridging/metrics_coco_ccrop.yaml` (labels
    `ResizeNearestExact(320)` then `CenterCrop(320)`), `_base_metrics.yaml` (`masks_resized`:
    `ocl.utils.resizing.Resize`, default `resize_mode="bilinear"`, to the labels' size). `ARIMetric`
    (`ocl/metrics/masks.py`) counts every image and `ocl/metrics/utils.py` `adjusted_rand_index` gives
    1 where its denominator is 0, so images without objects score FG-ARI 1; `UnsupervisedMaskIoUMetric`
    (ABO, mIoU) skips them. DINOSAUR centre-crops (shorter side to 320, then 320²); this model sees
    the whole frame squashed to its input, so the labels are squashed to 320² too: the same for square
    frames (MOVi), not for others.
dinosaur_movi: DINOSAUR on MOVi, same repository: the labels' own resolution (`_preprocessing_movi_c.yaml`
    keeps the masks at 128², `CheckFormat shape [11, 128, 128]`; `metrics_movi_c.yaml` resizes the masks
    to them), every frame as an image (`configs/dataset/movi_c_image.yaml`, `n_slices_per_input: -1`),
    FG-ARI and ABO as above (`_metrics_discovery_movi.yaml`). DINOSAUR reports image metrics only.
savi: SAVi's code (github google-research/slot-attention-video @ba8f15e): the labels' own resolution and all
    frames: `savi/configs/movi/savi_conditional_medium.py`, `_large.py`, `savi++_conditional.py`
    evaluate the 128² MOVi with `temporal_crop_or_pad(length=24)` and `resize_small(128)` (a no-op; SAVi-S,
    `savi_conditional_small.py`, resizes to 64²); `savi/lib/evaluator.py` scores every frame. SAVi's
    decoder masks are at that resolution already; ours are resized bilinearly to it. `savi/lib/metrics.py`
    scores one clustering per video (`einsum("bthwc,bthwk->bck")`), a video without foreground scoring 1
    (`jnp.where(denominator, ari, 1.0)`), and `Ari` (background included) beside `AriNoBg` (FG-ARI).
    SAVi's code has no per-frame metrics and no mBO/mIoU: here frames without objects are skipped.
savi_first_frame_dropped: the SAVi paper's variant: as `savi`, the first frame (which carries the
    conditioning) left out. Taken from the issue; not checked against the paper's text, which the
    tools here could not read.

Columns a project does not compute (e.g. mIoU, ARI with background) are this repository's definitions
at that row's resolution and frames: mBO and mIoU always skip videos and frames without objects, as
every project above that computes them does. A box-conditioned model is given the first frame's boxes
of the labels where `config.data.eval_resolution` puts them, whatever the protocols.
"""

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import linen as nn
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from ssync_jax import errors, metrics, rollout, sharding
from ssync_jax.data import pipeline, transforms
from ssync_jax.objectives import ssync

PREDICTIONS = {"": "dec_ids", "enc_": "enc_ids"}
LEVELS = {"video": False, "image": True}
METRICS = ("fg_ari", "mbo", "miou")
# What training logs of a protocol; every protocol also scores the video ARI with the background.
NAMES = tuple(f"{prefix}{level}_{metric}" for prefix in PREDICTIONS for level in LEVELS for metric in METRICS)
ARI_NAMES = tuple(f"{prefix}video_ari" for prefix in PREDICTIONS)
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


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How one project scores predicted masks (see the module docstring for the sources).

    Attributes:
        name: the row's name, e.g. "videosaur".
        used_by: who scores this way.
        resolution: where masks are compared: "model_input", "labels" (their own resolution) or a side
            length in pixels (both sides).
        video_without_foreground: FG-ARI of a video without any object pixel: "one" or "skip".
        frame_without_foreground: FG-ARI of a frame without object pixels: "one" or "skip".
        drop_first_frame: leave the first frame of every video out.
    """

    name: str
    used_by: str
    resolution: str | int
    video_without_foreground: str
    frame_without_foreground: str
    drop_first_frame: bool = False


PROTOCOLS = {
    protocol.name: protocol
    for protocol in (
        Protocol("ssync", "SSync, SlotContrast (authors' code)", "model_input", "one", "one"),
        Protocol("videosaur", "VideoSAUR", 224, "one", "one"),
        Protocol("dinosaur", "DINOSAUR (COCO, VOC)", 320, "one", "one"),
        Protocol("dinosaur_movi", "DINOSAUR (MOVi)", "labels", "one", "one"),
        Protocol("savi", "SAVi (code)", "labels", "one", "skip"),
        Protocol("savi_first_frame_dropped", "SAVi (paper)", "labels", "one", "skip", drop_first_frame=True),
    )
}
CONFIG_PROTOCOL = "config"  # `config.eval.protocol`'s value for the run's own (`config_protocol`).


def config_protocol(config: ml_collections.ConfigDict) -> Protocol:
    """The run's own protocol: the labels where `config.data.eval_resolution` puts them, videos and
    frames without objects as `config.eval.fg_ari_without_foreground` says."""
    where = config.data.eval_resolution
    if where not in pipeline.EVAL_RESOLUTIONS:
        raise errors.ConfigError(f"config.data.eval_resolution={where!r} must be one of {pipeline.EVAL_RESOLUTIONS}.")
    rule = config.eval.fg_ari_without_foreground
    return Protocol(CONFIG_PROTOCOL, "this run's config", "model_input" if where == "model_input" else "labels", rule, rule)


def default_protocol(config: ml_collections.ConfigDict) -> Protocol:
    """The protocol `config.eval.protocol` names: the run's own ("config", `config_protocol`) or one of
    `PROTOCOLS`; configs recorded before the key existed score their own."""
    name = config.eval.get("protocol", CONFIG_PROTOCOL)
    if name == CONFIG_PROTOCOL:
        return config_protocol(config)
    if name not in PROTOCOLS:
        raise errors.ConfigError(
            f"config.eval.protocol={name!r} is unknown; use {CONFIG_PROTOCOL!r} (the config's own) or one of "
            f"{', '.join(PROTOCOLS)}."
        )
    return PROTOCOLS[name]


def select_protocols(names: str) -> list[Protocol]:
    """The protocols `--protocols` names: "all", or names separated by commas, in the order given."""
    if names.strip() == "all":
        return list(PROTOCOLS.values())
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in PROTOCOLS]
    if unknown or not chosen:
        raise errors.ConfigError(f"--protocols={names!r}: unknown {unknown}; use 'all' or some of {', '.join(PROTOCOLS)}.")
    return [PROTOCOLS[name] for name in chosen]


def scoring_size(protocol: Protocol, label_size: Sequence[int], model_input: Sequence[int]) -> tuple[int, int]:
    """(H, W) at which `protocol` compares masks, given the labels' and the model input's (H, W)."""
    if protocol.resolution == "model_input":
        return int(model_input[0]), int(model_input[1])
    if protocol.resolution == "labels":
        return int(label_size[0]), int(label_size[1])
    return int(protocol.resolution), int(protocol.resolution)


def protocol_labels(segmentations: np.ndarray, size: tuple[int, int], drop_first_frame: bool) -> np.ndarray:
    """The ground truth a protocol scores against: resized nearest-exact to `size`, first frame dropped if asked.

    Args:
        segmentations: int `[B, T, h, w]` ids at the labels' own resolution.
        size: (H, W) of the protocol.
        drop_first_frame: leave frame 0 out.

    Returns:
        int32 `[B, T', H, W]`, T' = T - 1 when the first frame is dropped, else T.
    """
    batch, frames, height, width = segmentations.shape
    resized = transforms.resize_nearest(segmentations.reshape(batch * frames, height, width), size)
    resized = np.asarray(resized, np.int32).reshape(batch, frames, *size)  # [B, T, H, W]
    return resized[:, 1:] if drop_first_frame else resized


def conditioning_boxes(segmentations: np.ndarray, num_boxes: int, size: tuple[int, int] | None) -> np.ndarray:
    """First-frame boxes `[B, K, 4]` as the evaluation gives them to a box-conditioned model: of the
    labels resized to `size` (the config's eval_resolution "model_input"), or of the labels (None)."""
    if size is not None:
        segmentations = protocol_labels(segmentations, size, drop_first_frame=False)
    return np.stack([transforms.first_frame_boxes(video, num_boxes) for video in segmentations])


class ProtocolScorer:
    """Scores masks under several protocols at once and averages each score over what is valid.

    Attributes:
        protocols: the protocols, in order.
        model_input: (H, W) of the model input (for "model_input" protocols).
        num_true: `config.eval.num_true_ids`.
        num_pred: the slot count.
        mesh: the `data` mesh the masks live on; scores come back replicated.
        sizes: each protocol's (H, W), known from the first batch.
    """

    def __init__(
        self, protocols: Sequence[Protocol], *, model_input: Sequence[int], num_true: int, num_pred: int, mesh: Mesh
    ):
        self.protocols = list(protocols)
        self.model_input = tuple(int(side) for side in model_input)
        self.num_true = num_true
        self.num_pred = num_pred
        self.mesh = mesh
        self._segment = jax.jit(rollout.segment, static_argnames="size")
        self._scores = {
            protocol.name: jax.jit(protocol_scores(protocol, num_true, num_pred), out_shardings=sharding.replicated(mesh))
            for protocol in self.protocols
        }
        self.reset()

    def reset(self) -> None:
        """Forgets the batches scored so far (before another pass)."""
        self._totals: dict[str, dict[str, metrics.ValidAverage]] = {}
        self.sizes: dict[str, tuple[int, int]] = {}

    def add(
        self, segmentations: np.ndarray, valid: np.ndarray, mask_chunks: Iterable[tuple[jax.Array, jax.Array]]
    ) -> None:
        """Scores one batch: its labels, and the model's masks on their grids, chunk after chunk in time.

        Args:
            segmentations: int `[B, T, h, w]` this process's labels at their own resolution.
            valid: bool `[B]`, False for padding.
            mask_chunks: (dec_masks `[B, t, h', w', S]`, enc_attn `[B, t, h'', w'', S]`) of consecutive
                frames, together covering the T frames (global arrays, from `Rollout.chunks`); read
                after the labels are checked.
        """
        if segmentations.max() >= self.num_true:
            raise errors.ConfigError(
                f"A video has object id {segmentations.max()}, but config.eval.num_true_ids={self.num_true}; "
                "set it to at least the largest id + 1 (MOVi-C 11, MOVi-E 24)."
            )
        if segmentations.shape[1] < 2 and any(protocol.drop_first_frame for protocol in self.protocols):
            raise errors.ConfigError(
                f"Videos of {segmentations.shape[1]} frame leave nothing once the first frame is dropped; "
                "leave savi_first_frame_dropped out of --protocols."
            )
        label_size = segmentations.shape[2:4]
        sizes = {protocol.name: scoring_size(protocol, label_size, self.model_input) for protocol in self.protocols}
        self.sizes = sizes
        pieces: dict[tuple[int, int], list[dict[str, jax.Array]]] = {size: [] for size in sizes.values()}
        for dec_masks, enc_attn in mask_chunks:
            for size, chunks in pieces.items():
                chunks.append(self._segment(dec_masks, enc_attn, size=size))
        predictions = {
            size: {key: jnp.concatenate([chunk[key] for chunk in chunks], axis=1) for key in PREDICTIONS.values()}
            for size, chunks in pieces.items()
        }
        for protocol in self.protocols:
            size = sizes[protocol.name]
            labels = protocol_labels(segmentations, size, protocol.drop_first_frame)  # [B, T', H, W]
            batch = sharding.global_batch({"segmentations": labels, "valid": np.asarray(valid, bool)}, self.mesh)
            start = 1 if protocol.drop_first_frame else 0
            ids = {key: value[:, start:] for key, value in predictions[size].items()}
            scores = batch_scores(self._scores[protocol.name], batch["segmentations"], ids, batch["valid"])
            totals = self._totals.setdefault(protocol.name, {})
            for name in NAMES + ARI_NAMES:
                batch_average = metrics.ValidAverage.from_model_output(
                    jnp.asarray(scores[name], jnp.float32), jnp.asarray(scores[name + "_valid"])
                )
                totals[name] = batch_average if name not in totals else totals[name].merge(batch_average)

    def results(self) -> dict[str, dict[str, float]]:
        """{protocol name: {`NAMES` and `ARI_NAMES`: mean over valid videos or frames (nan if none)}}."""
        if not self._totals:
            raise errors.ConfigError("No batch was scored; check that the evaluation split has videos.")
        return {
            protocol.name: {name: float(total.compute()) for name, total in self._totals[protocol.name].items()}
            for protocol in self.protocols
        }


class Evaluation(NamedTuple):
    """One evaluation pass.

    Attributes:
        scores: {protocol name: {`NAMES` and `ARI_NAMES`: mean (nan where nothing was valid)}}.
        statistics: {`OBJECTIVE_NAMES` the model has: mean over videos}.
        num_videos: the videos scored (padding excluded).
        sizes: {protocol name: (H, W) it scored at}.
    """

    scores: dict[str, dict[str, float]]
    statistics: dict[str, float]
    num_videos: int
    sizes: dict[str, tuple[int, int]]


class Evaluator:
    """Runs the model once over an evaluation pass and scores its masks under each protocol.

    Attributes:
        model: the video model.
        config: the experiment config (reads `eval`, `model.num_slots`, `data.image_size`,
            `data.eval_resolution`, `data.chunk_length`, `ssync`, `seed`).
        mesh: the `data` mesh; batches are sharded over it, metrics come back replicated.
        protocols: what to score, in order; `evaluate` reports the first's. Default: the one
            `config.eval.protocol` names (`default_protocol`).
    """

    def __init__(
        self, model: nn.Module, config: ml_collections.ConfigDict, mesh: Mesh, protocols: Sequence[Protocol] | None = None
    ):
        self.model = model
        self.config = config
        self.mesh = mesh
        self.protocols = [default_protocol(config)] if protocols is None else list(protocols)
        self.rollout = rollout.Rollout(model, config.eval.chunk_length, config.seed)
        self._scorer = ProtocolScorer(
            self.protocols,
            model_input=config.data.image_size,
            num_true=config.eval.num_true_ids,
            num_pred=config.model.num_slots,
            mesh=mesh,
        )
        statistics = functools.partial(
            objective_statistics, clip_length=config.data.chunk_length, ssync_settings=config.ssync.to_dict()
        )
        self._statistics = jax.jit(statistics, out_shardings=sharding.replicated(mesh))
        # Where the boxes of a box-conditioned model are read: as training's evaluation gives them.
        self._box_size = tuple(config.data.image_size) if config_protocol(config).resolution == "model_input" else None

    def _add_batch(self, params, local_batch: Mapping[str, np.ndarray]) -> dict[str, metrics.ValidAverage]:
        """Runs the model over one batch, scores its masks; returns the batch's objective statistics."""
        segmentations = local_batch["segmentations"]
        inputs = {"video": local_batch["video"], "valid": local_batch["valid"]}
        if "boxes" in local_batch:
            inputs["boxes"] = conditioning_boxes(segmentations, local_batch["boxes"].shape[1], self._box_size)
        batch = sharding.global_batch(inputs, self.mesh)
        statistics = []

        def mask_chunks():  # Lazily: the scorer checks the labels before the model runs.
            for frames, outputs in self.rollout.chunks(params, batch["video"], conditioning=batch.get("boxes")):
                statistics.append((frames.stop - frames.start, self._statistics(outputs)))
                yield outputs["dec_masks"], outputs["enc_attn"]

        self._scorer.add(segmentations, local_batch["valid"], mask_chunks())
        # Each chunk's per-video averages, weighted by its frames: per-video averages over all frames.
        total_frames = sum(count for count, _ in statistics)
        valid = np.asarray(jax.device_get(batch["valid"]))
        averages = {}
        for name in OBJECTIVE_NAMES:
            values = sum(count * np.asarray(jax.device_get(chunk[name])) for count, chunk in statistics)
            values = (values / total_frames).astype(np.float32)
            averages[name] = metrics.ValidAverage.from_model_output(
                jnp.asarray(values), jnp.asarray(valid & np.isfinite(values))
            )
        return averages

    def run(self, params, dataset: Iterable[Mapping[str, np.ndarray]]) -> Evaluation:
        """Every protocol's scores and the objective's statistics over one pass of `dataset`.

        Args:
            params: the model params (sharded or replicated over the mesh).
            dataset: evaluation batches, labels at their own resolution (`evaluation_dataset`), each
                process iterating its own shard.

        Returns:
            The `Evaluation`.
        """
        self._scorer.reset()
        statistics, num_videos = None, 0
        iterator = iter(dataset)
        try:
            for local_batch in iterator:
                batch_statistics = self._add_batch(params, local_batch)
                if statistics is None:
                    statistics = batch_statistics
                else:
                    statistics = {name: total.merge(batch_statistics[name]) for name, total in statistics.items()}
                num_videos += int(local_batch["valid"].sum())
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        if statistics is None:
            raise errors.ConfigError("The evaluation dataset yielded no batch; check config.data.eval_split.")
        means = {name: float(total.compute()) for name, total in statistics.items()}
        return Evaluation(
            scores=self._scorer.results(),
            # A model whose target the evaluation batches do not carry (depth, flow) has no reconstruction error.
            statistics={name: value for name, value in means.items() if np.isfinite(value)},
            num_videos=int(np.sum(multihost_utils.process_allgather(np.int32(num_videos)))),
            sizes=dict(self._scorer.sizes),
        )

    def evaluate(self, params, dataset: Iterable[Mapping[str, np.ndarray]]) -> dict[str, float]:
        """What training logs: the first protocol's `NAMES`, the objective's statistics, "num_videos".

        Args:
            params: the model params (sharded or replicated over the mesh).
            dataset: evaluation batches (`evaluation_dataset`).

        Returns:
            {name: mean} for `NAMES`, the `OBJECTIVE_NAMES` the model has, and "num_videos" (valid,
            i.e. non-padding, videos).
        """
        evaluation = self.run(params, dataset)
        scores = evaluation.scores[self.protocols[0].name]
        return {**{name: scores[name] for name in NAMES}, **evaluation.statistics, "num_videos": evaluation.num_videos}


def protocol_scores(protocol: Protocol, num_true: int, num_pred: int):
    """`per_video_scores` for `num_true` label ids and `num_pred` slots with `protocol`'s rules for
    videos and frames without objects (jit it)."""
    return functools.partial(
        per_video_scores,
        num_true=num_true,
        num_pred=num_pred,
        video_without_foreground=protocol.video_without_foreground,
        frame_without_foreground=protocol.frame_without_foreground,
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
) -> dict[str, jax.Array]:
    """Per-video and per-frame FG-ARI and mBO, the video ARI with the background, and the IoU matrices
    mIoU needs, of one batch (jit-able).

    Args:
        true_ids: `[B, T, H, W]` ground-truth ids.
        predictions: {"dec_ids", "enc_ids"}: `[B, T, H, W]` predicted segment ids.
        valid: `[B]` False for padding.
        num_true: `config.eval.num_true_ids`.
        num_pred: the slot count.
        video_without_foreground: videos without objects: "skip" or "one" (`ssync_jax.metrics.fg_ari`).
        frame_without_foreground: the same for frames.

    Returns:
        "<name>" values and "<name>_valid" masks for the FG-ARI, mBO and ARI names, and
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
            if not per_frame:
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

    labels, _, _ = ssync.labels_of_maps(as_clips(enc_logits), as_clips(dec_logits), **ssync_settings)
    num_slots = labels.merge_target.shape[-1]
    merged = jnp.sum(labels.merge_target != jnp.arange(num_slots), axis=-1)  # [B * clips]
    statistics = {
        "ssync_boundary_fraction": jnp.mean(labels.boundary_mask.reshape(batch, -1), axis=1, dtype=jnp.float32),
        "ssync_interior_fraction": jnp.mean(labels.interior_mask.reshape(batch, -1), axis=1, dtype=jnp.float32),
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
    """Every score of `NAMES` and `ARI_NAMES` for one batch, with its validity: `scores_fn` (a jitted
    `per_video_scores`) on the devices, then Hungarian matching for mIoU on the host."""
    scores = jax.device_get(scores_fn(true_ids, predictions, valid))
    for prefix in PREDICTIONS:
        for level in LEVELS:
            iou, present = scores.pop(f"{prefix}{level}_iou"), scores.pop(f"{prefix}{level}_present")
            values, ok = metrics.hungarian_miou(iou, present)
            scores[f"{prefix}{level}_miou"] = values.astype(np.float32)
            scores[f"{prefix}{level}_miou_valid"] = ok
    return scores


def evaluation_config(config: ml_collections.ConfigDict, split: str | None = None) -> ml_collections.ConfigDict:
    """A copy of `config` whose evaluation pass reads `split` (None: `config.data.eval_split`) with the
    labels at their own resolution (each protocol resizes them itself) and only the fields scoring reads."""
    config = config.copy_and_resolve_references()
    if split:
        config.data.eval_split = split
    config.data.eval_resolution = "dataset"
    config.data.fields = ("video", "segmentations", *(("boxes",) if "boxes" in config.data.fields else ()))
    return config


def evaluation_dataset(config: ml_collections.ConfigDict, split: str | None = None) -> grain.IterDataset:
    """The evaluation pass of `split` (None: `config.data.eval_split`) that `evaluation_config`
    describes (a fresh one per evaluation)."""
    return pipeline.dataset_from_config(evaluation_config(config, split).data, train=False, seed=config.seed)
