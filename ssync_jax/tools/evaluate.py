r"""Every evaluation protocol in one table: the model run once, its masks scored the way each project scores.

    python -m ssync_jax.tools.evaluate --split test             # the model shipped with the package
    python -m ssync_jax.tools.evaluate --workdir workdirs/movi_c [--split test] [--protocols all] \
        [--out DIR] [--step N]
    python -m ssync_jax.tools.evaluate --params_checkpoint checkpoints/ssync_movi_c --config configs/movi_c.py \
        --config.data.data_dir ~/tensorflow_datasets --out results/ssync_movi_c

The model runs once over every evaluation video (`ssync_jax.rollout.Rollout`, as `ssync_jax.evaluate`
runs it); its decoder masks and its encoder's slot attention (columns prefixed `enc_`) are then scored
under each protocol. Prints a line naming the model, split and videos, then markdown tables (the
protocols; the decoder's scores; the encoder's), and with --out writes them to OUT/eval_protocols.json
and .csv. Values are fractions in the files, percentages in the printed tables.

Columns: video FG-ARI, image FG-ARI (per frame), video ARI with the background, video and image mBO,
video and image Hungarian mIoU (`ssync_jax.metrics`). Every row resizes the labels nearest-exact
(`transforms.resize_nearest`, half-pixel centres) and the predicted masks bilinearly from their grid
(`metrics.masks_to_ids`, torch's `interpolate(mode="bilinear")`), then argmax, to its resolution.

Rows, and the code each follows (at the commits named):

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
every project above that computes them does.
"""

from ssync_jax import cli  # First: it quiets TensorFlow before anything loads it.

import csv
import dataclasses
import functools
import math
import os
from collections.abc import Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from ssync_jax import checkpoints, errors, evaluate, metrics, paths, rollout, sharding
from ssync_jax.data import transforms

COLUMNS = ("video_fg_ari", "image_fg_ari", "video_ari", "video_mbo", "image_mbo", "video_miou", "image_miou")
PREDICTIONS = evaluate.PREDICTIONS  # {"": "dec_ids", "enc_": "enc_ids"}
NAMES = tuple(prefix + column for prefix in PREDICTIONS for column in COLUMNS)
RESULTS_NAME = "eval_protocols"  # OUT/eval_protocols.json and .csv
_HEADINGS = {
    "video_fg_ari": "vid FG-ARI",
    "image_fg_ari": "img FG-ARI",
    "video_ari": "vid ARI+bg",
    "video_mbo": "vid mBO",
    "image_mbo": "img mBO",
    "video_miou": "vid mIoU",
    "image_miou": "img mIoU",
}
_WITHOUT = {"one": "FG-ARI 1", "skip": "skipped"}  # How the table says what happens without objects.
_SOURCES = {"": "decoder masks", "enc_": "encoder slot attention"}


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


class ProtocolScorer:
    """Scores masks under several protocols at once and averages each column over what is valid.

    Attributes:
        protocols: the protocols, in the order of the table.
        model_input: (H, W) of the model input (for "model_input" protocols).
        num_true: `config.eval.num_true_ids`.
        num_pred: the slot count.
        mesh: the `data` mesh the masks live on; scores come back replicated.
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
            protocol.name: jax.jit(
                functools.partial(
                    evaluate.per_video_scores,
                    num_true=num_true,
                    num_pred=num_pred,
                    video_without_foreground=protocol.video_without_foreground,
                    frame_without_foreground=protocol.frame_without_foreground,
                    with_ari=True,
                ),
                out_shardings=sharding.replicated(mesh),
            )
            for protocol in self.protocols
        }
        self._totals: dict[str, dict[str, metrics.ValidAverage]] = {}
        self.sizes: dict[str, tuple[int, int]] = {}  # Each protocol's (H, W), known from the first batch.

    def add(
        self, segmentations: np.ndarray, valid: np.ndarray, mask_chunks: Iterable[tuple[jax.Array, jax.Array]]
    ) -> None:
        """Scores one batch: its labels, and the model's masks on their grids, chunk after chunk in time.

        Args:
            segmentations: int `[B, T, h, w]` this process's labels at their own resolution.
            valid: bool `[B]`, False for padding.
            mask_chunks: (dec_masks `[B, t, h', w', S]`, enc_attn `[B, t, h'', w'', S]`) of consecutive
                frames, together covering the T frames (global arrays, from `Rollout.chunks`).
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
            scores = evaluate.batch_scores(self._scores[protocol.name], batch["segmentations"], ids, batch["valid"])
            totals = self._totals.setdefault(protocol.name, {})
            for name in NAMES:
                batch_average = metrics.ValidAverage.from_model_output(
                    jnp.asarray(scores[name], jnp.float32), jnp.asarray(scores[name + "_valid"])
                )
                totals[name] = batch_average if name not in totals else totals[name].merge(batch_average)

    def results(self) -> dict[str, dict[str, float]]:
        """{protocol name: {column of `NAMES`: mean over valid videos or frames (nan if none)}}."""
        if not self._totals:
            raise errors.ConfigError("No batch was scored; check that the evaluation split has videos.")
        return {
            protocol.name: {name: float(self._totals[protocol.name][name].compute()) for name in NAMES}
            for protocol in self.protocols
        }


def conditioning_boxes(segmentations: np.ndarray, num_boxes: int, size: tuple[int, int] | None) -> np.ndarray:
    """First-frame boxes `[B, K, 4]` as `main.py --mode eval` gives them to a box-conditioned model: of the
    labels resized to `size` (its config's eval_resolution "model_input"), or of the labels (None)."""
    if size is not None:
        segmentations = protocol_labels(segmentations, size, drop_first_frame=False)
    return np.stack([transforms.first_frame_boxes(video, num_boxes) for video in segmentations])


def evaluate_protocols(
    model,
    params,
    config: ml_collections.ConfigDict,
    mesh: Mesh,
    dataset: Iterable[Mapping[str, np.ndarray]],
    protocols: Sequence[Protocol],
) -> tuple[dict[str, dict[str, float]], int, dict[str, tuple[int, int]]]:
    """Runs the model once over `dataset` and scores it under every protocol.

    Args:
        model: the video model.
        params: its params.
        config: the experiment config the model was trained with (reads `eval`, `model.num_slots`,
            `data.image_size`, `data.eval_resolution` for conditioning boxes, `seed`).
        mesh: the `data` mesh.
        dataset: evaluation batches with labels at their own resolution (`evaluation_config`).
        protocols: the rows.

    Returns:
        ({protocol: {column: mean}}, the number of videos scored (padding excluded), {protocol: (H, W)
        it scored at}).
    """
    scorer = ProtocolScorer(
        protocols,
        model_input=config.data.image_size,
        num_true=config.eval.num_true_ids,
        num_pred=config.model.num_slots,
        mesh=mesh,
    )
    model_rollout = rollout.Rollout(model, config.eval.chunk_length, config.seed)
    box_size = tuple(config.data.image_size) if config.data.eval_resolution == "model_input" else None
    num_videos = 0
    iterator = iter(dataset)
    try:
        for local_batch in iterator:
            inputs = {"video": local_batch["video"]}
            if "boxes" in local_batch:
                inputs["boxes"] = conditioning_boxes(
                    local_batch["segmentations"], local_batch["boxes"].shape[1], box_size
                )
            batch = sharding.global_batch(inputs, mesh)
            chunks = model_rollout.chunks(params, batch["video"], conditioning=batch.get("boxes"))
            scorer.add(
                local_batch["segmentations"],
                local_batch["valid"],
                ((outputs["dec_masks"], outputs["enc_attn"]) for _, outputs in chunks),
            )
            num_videos += int(local_batch["valid"].sum())
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    num_videos = int(np.sum(multihost_utils.process_allgather(np.int32(num_videos))))
    return scorer.results(), num_videos, scorer.sizes


def evaluation_config(config: ml_collections.ConfigDict, split: str | None) -> ml_collections.ConfigDict:
    """A copy of `config` whose evaluation pass reads `split` with the labels at their own resolution
    (each protocol resizes them itself) and only the fields scoring needs."""
    config = config.copy_and_resolve_references()
    if split:
        config.data.eval_split = split
    config.data.eval_resolution = "dataset"
    config.data.fields = ("video", "segmentations", *(("boxes",) if "boxes" in config.data.fields else ()))
    return config


def load_from_flags(
    workdir: str | None,
    config: ml_collections.ConfigDict | None,
    params_checkpoint: str | None,
    step: int | None,
    mesh: Mesh,
) -> checkpoints.LoadedModel:
    """The model the flags name, checked, then loaded (`checkpoints.load_model`) as `python main.py
    --mode eval` loads it.

    Args:
        workdir: a training workdir (config.json, checkpoints/) or a model directory
            (`python -m ssync_jax.tools.save_model`); None with `params_checkpoint`, or None alone for
            the model shipped with the package (`checkpoints.SHIPPED_MODEL`).
        config: the experiment config; None reads the workdir's config.json.
        params_checkpoint: an orbax params checkpoint (e.g. imported weights) to evaluate instead of
            the workdir's checkpoint; None falls back to `config.eval.params_checkpoint`, then the workdir.
        step: the workdir checkpoint; None for the latest.
        mesh: the `data` mesh the params go to.

    Returns:
        (model, params, config, step: the checkpoint's, 0 for a params checkpoint).

    Raises:
        FileNotFoundError: the workdir, its config.json or the checkpoint is missing.
        ValueError: neither a workdir nor a params checkpoint with a config was given.
    """
    if workdir is None and params_checkpoint is None and config is None:
        return checkpoints.load_model(mesh=mesh)  # The shipped model.
    if workdir is not None and checkpoints.is_model_dir(workdir):
        if step is not None or params_checkpoint is not None:
            raise errors.ConfigError(f"{workdir} is a model directory (one step, its own params): drop --step and --params_checkpoint.")
        return checkpoints.load_model(workdir, config, mesh=mesh)
    if workdir is not None:
        if not checkpoints.is_workdir(workdir):  # Raises, naming it, when it does not exist.
            raise errors.InputNotFoundError(
                f"--workdir {workdir} is not a training workdir (no {checkpoints.CONFIG_FILE}, no checkpoints/); "
                "pass the --workdir of a python main.py run."
            )
        config = checkpoints.read_config(workdir) if config is None else config
    elif params_checkpoint is None or config is None:
        raise errors.ConfigError(
            "Nothing to evaluate: pass --workdir W (a python main.py run), or --params_checkpoint DIR with "
            "--config FILE (e.g. configs/movi_c.py)."
        )
    imported = params_checkpoint or config.eval.get("params_checkpoint")
    return checkpoints.load_model(imported or workdir, config, None if imported else step, mesh)


def result_rows(
    results: Mapping[str, Mapping[str, float]],
    protocols: Sequence[Protocol],
    sizes: Mapping[str, tuple[int, int]],
) -> list[dict[str, str | float | None]]:
    """One dict per protocol: its description, then the columns of `NAMES` (None where nothing was valid)."""
    rows = []
    for protocol in protocols:
        height, width = sizes[protocol.name]
        video, frame = (_WITHOUT[protocol.video_without_foreground], _WITHOUT[protocol.frame_without_foreground])
        without = video if video == frame else f"videos {video}, frames {frame}"
        row: dict[str, str | float | None] = {
            "protocol": protocol.name,
            "used_by": protocol.used_by,
            "scored_at": f"{height}x{width}",
            "frames": "2..T" if protocol.drop_first_frame else "all",
            "without_objects": without,
        }
        for name in NAMES:
            value = results[protocol.name][name]
            row[name] = None if math.isnan(value) else value
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[Mapping[str, str | float | None]], header: str = "") -> str:
    """The rows as markdown for a person: `header`, then the protocols' descriptions, then one table of
    scores per prediction (decoder masks, encoder attention) in percent with one decimal ("–" where
    nothing was valid); every line under 100 characters."""
    lines = [header, ""] if header else []
    descriptions = ("protocol", "used_by", "scored_at", "frames", "without_objects")
    lines += ["| protocol | used by | scored at | frames | a video or frame without objects |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(str(row[key]) for key in descriptions) + " |" for row in rows]
    for prefix, source in _SOURCES.items():
        lines += ["", f"{source}, %:", ""]
        lines += ["| protocol | " + " | ".join(_HEADINGS[column] for column in COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
        for row in rows:
            cells = ["–" if row[prefix + c] is None else f"{100 * row[prefix + c]:.1f}" for c in COLUMNS]
            lines.append(f"| {row['protocol']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_header(source: str, step: int, split: str, num_videos: int) -> str:
    """The line above the tables: which model, which videos, which units."""
    return (
        f"{source} at step {step}: {split} split, {num_videos} videos.\n"
        "Scores in %. FG-ARI leaves the background out (ARI+bg keeps it); vid: over all frames of a\n"
        "video at once; img: per frame, averaged."
    )


def write_results(record: Mapping[str, object], rows: Sequence[Mapping[str, object]], out: str) -> tuple[str, str]:
    """Writes OUT/eval_protocols.json (`record` with the rows) and OUT/eval_protocols.csv (the rows).

    Returns:
        The two paths.
    """
    os.makedirs(out, exist_ok=True)
    json_path = os.path.join(out, RESULTS_NAME + ".json")
    paths.write_json(json_path, {**record, "rows": list(rows)})
    csv_path = os.path.join(out, RESULTS_NAME + ".csv")
    temporary = csv_path + ".tmp"
    with open(temporary, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, csv_path)
    return json_path, csv_path


def run(
    *,
    workdir: str | None,
    config: ml_collections.ConfigDict | None,
    params_checkpoint: str | None,
    step: int | None,
    split: str | None,
    protocols: Sequence[Protocol],
    out: str | None,
) -> tuple[str, str | None, str | None]:
    """Loads, evaluates under every protocol and writes the results (with `out`).

    Returns:
        (the printed tables, the JSON path, the CSV path; None, None without `out`).
    """
    mesh = sharding.make_mesh()
    model, params, config, step = load_from_flags(workdir, config, params_checkpoint, step, mesh)
    eval_config = evaluation_config(config, split)
    results, num_videos, sizes = evaluate_protocols(
        model, params, config, mesh, evaluate.evaluation_dataset(eval_config), protocols
    )
    rows = result_rows(results, protocols, sizes)
    record = {"step": step, "split": eval_config.data.eval_split, "num_videos": num_videos, "columns": list(NAMES)}
    source = params_checkpoint or workdir or "The shipped default model"
    table = markdown_table(rows, table_header(source, step, record["split"], num_videos))
    if out is None:
        return table, None, None
    json_path, csv_path = write_results(record, rows, out)
    return table, json_path, csv_path


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    protocols = select_protocols(options.protocols)
    if options.out:  # Before the model loads.
        paths.check_output_folder(options.out, "--out", [RESULTS_NAME + ".json", RESULTS_NAME + ".csv"])
    table, json_path, csv_path = run(
        workdir=options.workdir,
        config=options.config,
        params_checkpoint=options.params_checkpoint,
        step=options.step,
        split=options.split,
        protocols=protocols,
        out=paths.absolute(options.out) if options.out else None,
    )
    print(table)
    if json_path:
        print(f"\nWritten to {json_path} and {csv_path}")
    else:
        print(f"\nNot written: --out DIR writes {RESULTS_NAME}.json and .csv there.")


if __name__ == "__main__":
    # Defined here, not at import, so that importing this module beside other CLIs' flags cannot clash.
    from ml_collections import config_flags

    cli.DEFINE_path(
        "workdir", None, "Training workdir (config.json and checkpoints/) or model directory (save_model); "
        "default: the model shipped with the package."
    )
    flags.DEFINE_integer("step", None, "Checkpoint step of the workdir; default the latest.")
    config_flags.DEFINE_config_file(
        "config", None, "Experiment config file (with --config.a.b=value overrides): required with "
        "--params_checkpoint; with --workdir it replaces the workdir's config.json."
    )
    cli.DEFINE_path("params_checkpoint", None, "An orbax params checkpoint (e.g. imported weights) to evaluate.")
    flags.DEFINE_string("split", None, "Dataset split; default the config's data.eval_split.")
    flags.DEFINE_string("protocols", "all", f"'all' or a comma-separated subset of {', '.join(PROTOCOLS)}.")
    cli.DEFINE_path("out", None, "Folder for eval_protocols.json and .csv (which must not be there yet); default: print only.")
    cli.run(main)
