r"""Videos of what a trained model does on its dataset: slots, ground truth and SSync's pseudo-labels.

    python -m ssync_jax.tools.visualize --workdir workdirs/synthetic --split validation --num 8 \
        --out workdirs/synthetic/videos [--checkpoint STEP] [--format gif|mp4|png] [--fps 4]
    python -m ssync_jax.tools.visualize --out videos      # the shipped model, on its generated data

The first `--num` videos of the split go through the evaluation pipeline of the workdir's
`config.json` (resize, normalisation) and the model (whole videos, chunks with the slots carried,
as in evaluation). Each becomes `OUT/<split>_<video index>.<format>`, every frame a row of panels
at the label resolution (enlarged to at least 128 pixels high), titled above:

    frame t/T        the input frame
    slots            the decoder's slot masks (the predicted segmentation), one colour per slot
    ground truth     the dataset's segmentation, one colour per object id (background untinted)
    SSync boundary   merged encoder pseudo-labels; white outline: boundary patches, where the
                     encoder's labels supervise the decoder
    SSync interior   merged decoder pseudo-labels; black outline: interior patches, where the
                     decoder's labels supervise the encoder

`--format png` writes a still instead: the rows of the first, middle and last frames stacked (for
documents and issues).

Colours are the TensorBoard images' palette indexed by slot (or object) id, so slot k has the same
colour in every frame, video and panel. The pseudo-labels are computed over the whole video (the
slot merge sees all its frames), with the config's `ssync` settings, whether or not the SSync
losses were on in training.
"""

from ssync_jax import cli  # First: it quiets TensorFlow before anything loads it.

import os
from collections.abc import Mapping, Sequence

import ml_collections
import numpy as np
from absl import app, flags
from PIL import Image, ImageDraw, ImageFont

from ssync_jax import inference, paths, video_io
from ssync_jax.data import pipeline, transforms
from ssync_jax.objectives import ssync
from ssync_jax.summaries import outline, overlay, upsample_nearest

PANEL_TITLES = ("frame", "slots", "ground truth", "SSync boundary", "SSync interior")
TITLE_HEIGHT = 14  # Pixels of the title strip above the panels.
GAP = 2  # Pixels between panels.
MIN_PANEL_HEIGHT = 128
_BACKGROUND = 32  # Grey of the title strip and the gaps.
# Outline colours of the patches each SSync loss uses, as in the TensorBoard images.
_BOUNDARY_COLOUR, _INTERIOR_COLOUR = 1.0, 0.0


def panel_size(label_size: Sequence[int]) -> tuple[int, int]:
    """(height, width) of one panel: the label resolution times the smallest integer factor that
    makes it at least `MIN_PANEL_HEIGHT` high (a whole factor, so label pixels stay square blocks)."""
    scale = max(1, -(-MIN_PANEL_HEIGHT // label_size[0]))
    return label_size[0] * scale, label_size[1] * scale


def display_frames(video: np.ndarray, normalization: str, size: tuple[int, int]) -> np.ndarray:
    """Model input back to viewable frames: the inverse of `transforms.normalize`, then a bicubic resize.

    Args:
        video: float32 `[T, h, w, 3]` normalised frames.
        normalization: the config's `data.normalization`.
        size: output (H, W).

    Returns:
        float32 `[T, H, W, 3]` in [0, 1].
    """
    # The normalisation is x * scale + offset per channel, so two points give its inverse.
    offset = transforms.normalize(np.zeros((1, 3), np.float32), normalization)  # [1, 3]
    scale = transforms.normalize(np.ones((1, 3), np.float32), normalization) - offset  # [1, 3]
    unit = np.clip((video - offset) / scale, 0.0, 1.0)  # [T, h, w, 3]
    return transforms.resize_bicubic(np.round(unit * 255).astype(np.uint8), size)  # [T, H, W, 3]


def pseudo_labels(prediction: inference.Prediction, config: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
    """SSync's merged labels and patch selections of a whole video.

    Args:
        prediction: from `Predictor.predict(..., with_maps=True)`.
        config: the experiment config (its `ssync` section).

    Returns:
        enc_labels, dec_labels (int32), boundary_mask, interior_mask (bool), each `[T, h, w]`.
    """
    pseudo, _, _ = ssync.labels_of_maps(prediction.enc_logits[None], prediction.dec_logits[None], **config.ssync)
    names = ("enc_labels", "dec_labels", "boundary_mask", "interior_mask")
    return {name: np.asarray(getattr(pseudo, name)[0]) for name in names}


def render_panels(
    frames: np.ndarray, masks: np.ndarray, true_ids: np.ndarray, pseudo: Mapping[str, np.ndarray]
) -> list[np.ndarray]:
    """The panels of `PANEL_TITLES` for every frame, all at the size of `frames`.

    Args:
        frames: float32 `[T, H, W, 3]` in [0, 1].
        masks: int `[T, h, w]` predicted slot ids (any resolution; enlarged by repetition).
        true_ids: int `[T, h', w']` ground-truth ids, 0 the background (left untinted).
        pseudo: from `pseudo_labels`, each `[T, h'', w'']` on the patch grid.

    Returns:
        Five float32 `[T, H, W, 3]` images in [0, 1].
    """
    size = frames.shape[1:3]
    true_ids = upsample_nearest(true_ids, size)  # [T, H, W]
    background = (true_ids == 0)[..., None]  # [T, H, W, 1]
    panels = [
        frames,
        overlay(frames, upsample_nearest(masks, size)),
        np.where(background, frames, overlay(frames, true_ids)),
    ]
    for labels, selection, colour in (
        ("enc_labels", "boundary_mask", _BOUNDARY_COLOUR),
        ("dec_labels", "interior_mask", _INTERIOR_COLOUR),
    ):
        tinted = overlay(frames, upsample_nearest(pseudo[labels], size))  # [T, H, W, 3]
        selected = upsample_nearest(pseudo[selection], size)[..., None]  # [T, H, W, 1]
        panels.append(np.where(outline(selected), colour, tinted))
    return [np.clip(panel, 0.0, 1.0).astype(np.float32) for panel in panels]


def compose(panels: Sequence[np.ndarray], titles: Sequence[Sequence[str]]) -> np.ndarray:
    """Lays panels side by side under a title strip, frame by frame.

    Args:
        panels: P float `[T, H, W, 3]` images in [0, 1].
        titles: per frame, P titles.

    Returns:
        uint8 `[T, TITLE_HEIGHT + H, P * W + (P - 1) * GAP, 3]`.
    """
    num_frames, height, width, _ = panels[0].shape
    canvas = np.full(
        (num_frames, TITLE_HEIGHT + height, len(panels) * (width + GAP) - GAP, 3), _BACKGROUND, np.uint8
    )  # [T, H', W', 3]
    for p, panel in enumerate(panels):
        left = p * (width + GAP)
        canvas[:, TITLE_HEIGHT:, left : left + width] = np.round(panel * 255).astype(np.uint8)
    font = ImageFont.load_default()
    for t, frame_titles in enumerate(titles):
        for p, title in enumerate(frame_titles):
            # Drawn on a strip of the panel's width, so a long title is cut at the panel's edge.
            strip = Image.new("RGB", (width, TITLE_HEIGHT), (_BACKGROUND,) * 3)
            ImageDraw.Draw(strip).text((2, 1), title, fill=(255, 255, 255), font=font)
            left = p * (width + GAP)
            canvas[t, :TITLE_HEIGHT, left : left + width] = np.asarray(strip)
    return canvas


def visualize_video(
    predictor: inference.Predictor, video: np.ndarray, true_ids: np.ndarray, boxes: np.ndarray | None = None
) -> np.ndarray:
    """The frames of one visualisation video.

    Args:
        predictor: the trained model.
        video: float32 `[T, h, w, 3]` model input from the evaluation pipeline.
        true_ids: int `[T, H, W]` ground-truth segmentation at label resolution.
        boxes: the first frame's object boxes `[K, 4]`, for a model with box-conditioned slots.

    Returns:
        uint8 frames `[T, TITLE_HEIGHT + H', 5 * W' + 4 * GAP, 3]`, (H', W') = `panel_size((H, W))`.
    """
    label_size = true_ids.shape[1:3]
    prediction = predictor.predict_frames(video, label_size, with_maps=True, boxes=boxes)
    size = panel_size(label_size)
    frames = display_frames(video, predictor.config.data.normalization, size)
    panels = render_panels(frames, prediction.masks, true_ids, pseudo_labels(prediction, predictor.config))
    num_frames = len(video)
    titles = [(f"{PANEL_TITLES[0]} {t + 1}/{num_frames}", *PANEL_TITLES[1:]) for t in range(num_frames)]
    return compose(panels, titles)


def still_frames(frames: np.ndarray) -> np.ndarray:
    """uint8 `[T, H, W, 3]` frames -> one `[k * H, W, 3]` image: the first, middle and last frames stacked."""
    picked = sorted({0, len(frames) // 2, len(frames) - 1})
    return np.concatenate([frames[t] for t in picked], axis=0)


def write_visualizations(
    predictor: inference.Predictor, split: str, num: int, out: str, video_format: str = "gif", fps: float = 4.0
) -> list[str]:
    """Writes the visualisation of each of the first `num` videos of `split`.

    Args:
        predictor: the trained model; its config's `data` section names the dataset.
        split: the dataset split.
        num: how many videos (fewer if the split is shorter).
        out: output folder (created if missing).
        video_format: "gif" or "mp4", or "png" for a still of the first, middle and last frames.
        fps: frames per second.

    Returns:
        The paths written, `out/<split>_<video index>.<format>`.
    """
    data = predictor.config.data.copy_and_resolve_references()
    data.eval_split = split
    data.eval_batch_size = 1
    data.fields = ("video", "segmentations", *(("boxes",) if "boxes" in data.fields else ()))
    iterator = iter(
        pipeline.dataset_from_config(data, train=False, seed=predictor.config.seed, process_index=0, process_count=1)
    )
    os.makedirs(out, exist_ok=True)
    written = []
    try:
        for batch in iterator:
            if len(written) == num:
                break
            boxes = batch["boxes"][0] if "boxes" in batch else None
            frames = visualize_video(predictor, batch["video"][0], batch["segmentations"][0], boxes)
            path = os.path.join(out, f"{split}_{int(batch['video_index'][0]):04d}.{video_format}")
            if video_format == "png":
                Image.fromarray(still_frames(frames)).save(path)
            else:
                video_io.write_video(path, frames, fps)
            written.append(path)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    return written


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    names = [f"{options.split}_{index:04d}.{options.format}" for index in range(options.num)]
    paths.check_output_folder(options.out, "--out", names)  # Before the model and the data load.
    predictor = inference.load(options.workdir, options.checkpoint)
    written = write_visualizations(predictor, options.split, options.num, options.out, options.format, options.fps)
    print(f"Wrote {len(written)} videos of the {options.split} split to {os.path.abspath(options.out)}:")
    for path in written:
        print(" ", path)


if __name__ == "__main__":
    # Defined here, not at import, so that importing this module beside other CLIs' flags cannot clash.
    cli.DEFINE_path(
        "workdir", None, "A training workdir or a model directory (tools/save_model.py); default: the trained "
        "default model shipped with the package."
    )
    flags.DEFINE_integer("checkpoint", None, "Checkpoint step to show; default the latest.")
    flags.DEFINE_string("split", "validation", "Dataset split of the workdir's config.data to show.")
    flags.DEFINE_integer("num", 8, "How many videos (the first of the split).", lower_bound=1)
    cli.DEFINE_path("out", None, "Folder for the videos (created if missing).")
    flags.DEFINE_enum("format", "gif", ["gif", "mp4", "png"], "Video format, or png: a still of 3 frames.")
    flags.DEFINE_float("fps", 4.0, "Frames per second.", lower_bound=0.01)
    flags.mark_flags_as_required(["out"])
    cli.run(main)
