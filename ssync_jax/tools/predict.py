r"""Slot masks for your own video from a trained model.

    python -m ssync_jax.tools.predict --input my_video.mp4 --out predictions      # the shipped model
    python -m ssync_jax.tools.predict --workdir workdirs/synthetic --input my_video.mp4 --out predictions \
        [--step N] [--fps 8] [--format mp4|gif] [--fit squash|pad]

`--workdir` is a training workdir or a model directory (`python -m ssync_jax.tools.save_model`);
without it, the default config's trained model that ships with the package
(`ssync_jax/pretrained/default`, made by its README command on generated MOVi-A-like scenes at 32²).

`--input` is a video file FFmpeg reads (MP4, MOV, WebM, GIF, ...) or a folder of PNG/JPEG frames
in file-name order. Writes to `--out`:

    masks.npz     masks int32 [T, H, W] (decoder slot id per pixel, the predicted segmentation),
                  encoder_masks int32 [T, H, W] (slot attention's), slots float32 [T, S, D],
                  at the input's resolution
    overlay.mp4   the input tinted by the colour of each pixel's slot (or overlay.gif)

Frames are resized to the model's input size (frames of another aspect ratio are squashed, or with
`--fit=pad` padded to it first; the tool says which) and run in chunks as in evaluation (see
`ssync_jax.inference`); the masks come back at the input's size.
"""

from ssync_jax import cli  # First: it quiets TensorFlow before anything loads it.

import os

import numpy as np
from absl import app, flags

from ssync_jax import errors, inference, paths, video_io
from ssync_jax.summaries import overlay

MASKS_FILE = "masks.npz"
OVERLAY_NAME = "overlay"


def write_prediction(
    video: np.ndarray, prediction: inference.Prediction, out: str, fps: float = 8.0, video_format: str = "mp4"
) -> tuple[str, str]:
    """Saves the masks and slots and an overlay video; each file appears only once complete.

    Args:
        video: uint8 `[T, H, W, 3]` input frames.
        prediction: `Predictor.predict(video)`.
        out: output folder (created if missing).
        fps: frames per second of the overlay.
        video_format: "mp4" or "gif".

    Returns:
        The paths of `masks.npz` and the overlay video.
    """
    os.makedirs(out, exist_ok=True)
    masks_path = os.path.join(out, MASKS_FILE)
    temporary = os.path.join(out, f".{MASKS_FILE}.partial.npz")
    np.savez_compressed(
        temporary, masks=prediction.masks, encoder_masks=prediction.encoder_masks, slots=prediction.slots
    )
    os.replace(temporary, masks_path)
    tinted = overlay(video.astype(np.float32) / 255.0, prediction.masks)  # [T, H, W, 3] in [0, 1]
    overlay_path = os.path.join(out, f"{OVERLAY_NAME}.{video_format}")
    video_io.write_video(overlay_path, np.round(tinted * 255).astype(np.uint8), fps)
    return masks_path, overlay_path


def parse_boxes(text: str, size: tuple[int, int]) -> np.ndarray:
    """"y0,x0,y1,x1;..." in pixels of frames of `size` (H, W) -> [K, 4] fractions of the frame."""
    try:
        boxes = np.array([[float(v) for v in box.split(",")] for box in text.split(";") if box.strip()], np.float32)
    except ValueError:
        boxes = np.zeros((0, 0))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise errors.ConfigError(f"--boxes={text!r}: expected y_min,x_min,y_max,x_max in pixels, boxes separated by ';'")
    return boxes / np.array([size[0], size[1], size[0], size[1]], np.float32)


def fit_note(size: tuple[int, int], model_size: tuple[int, int], fit: str) -> str:
    """One line saying how frames of `size` (H, W) met the model's input size."""
    height, width = size
    line = f"frames resized from {width}x{height} to the model's {model_size[1]}x{model_size[0]}"
    if height * model_size[1] == width * model_size[0]:
        return line
    if fit == "pad":
        return line + ", padded first to its aspect ratio by repeating the edge pixels (--fit=pad)"
    aspect, model_aspect = width / height, model_size[1] / model_size[0]
    return line + f": aspect {aspect:.2f} squashed to {model_aspect:.2f} (pass --fit=pad to keep it)"


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    # The output and the input first: a wrong path should not wait for the model to load.
    paths.check_output_folder(options.out, "--out", [MASKS_FILE, f"{OVERLAY_NAME}.{options.format}"])
    video = video_io.read_video(options.input)
    boxes = parse_boxes(options.boxes, video.shape[1:3]) if options.boxes else None
    predictor = inference.load(options.workdir, options.step)
    prediction = predictor.predict(video, fit=options.fit, boxes=boxes)
    masks_path, overlay_path = write_prediction(video, prediction, options.out, options.fps, options.format)
    num_frames, height, width = prediction.masks.shape
    print(f"{num_frames} frames of {width}x{height}, {prediction.slots.shape[1]} slots:")
    print(f"  {fit_note(video.shape[1:3], predictor.image_size, options.fit)}")
    print(f"  masks, encoder_masks, slots -> {os.path.abspath(masks_path)}")
    print(f"  overlay video               -> {os.path.abspath(overlay_path)}")


if __name__ == "__main__":
    # Defined here, not at import, so that importing this module beside other CLIs' flags cannot clash.
    cli.DEFINE_path(
        "workdir", None, "A training workdir or a model directory (tools/save_model.py); default: the trained "
        "default model shipped with the package."
    )
    flags.DEFINE_integer("step", None, "Checkpoint step; default the latest.")
    cli.DEFINE_path("input", None, "Video file or folder of PNG/JPEG frames.")
    cli.DEFINE_path("out", None, "Output folder (created if missing).")
    flags.DEFINE_float("fps", 8.0, "Frames per second of the overlay video.", lower_bound=0.01)
    flags.DEFINE_enum("format", "mp4", ["mp4", "gif"], "Overlay video format.")
    flags.DEFINE_string(
        "boxes", None, "For models with box-conditioned slots: the objects' boxes in the first frame, "
        "y_min,x_min,y_max,x_max in pixels, separated by ';'."
    )
    flags.DEFINE_enum(
        "fit", "squash", list(inference.FITS), "Frames of another aspect ratio than the model's input: resize "
        "them to it (squash), or pad them to its aspect ratio first, repeating the edge pixels (pad)."
    )
    flags.mark_flags_as_required(["input", "out"])
    cli.run(main)
