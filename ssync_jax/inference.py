"""Slot masks for your own videos from a trained model.

    predictor = inference.load()                                 # the default's trained model, shipped
    predictor = inference.load("workdirs/synthetic")            # a training workdir, latest step
    predictor = inference.load("checkpoints/ssync_movi_c", config=movi_c.get_config())  # params only
    prediction = predictor.predict(video)                        # uint8 [T, H, W, 3], any H, W
    prediction.masks                                             # int32 [T, H, W] slot ids

Frames go through the input pipeline's bicubic resize to `config.data.image_size` and its
normalisation, then the model chunk by chunk with the slots carried, through the same
`ssync_jax.rollout.Rollout` as evaluation, the last chunk padded so that every video of one frame
size runs on the same compiled programs. Masks are the decoder's (and the encoder's slot
attention's) masks resized bilinearly to the input resolution, then argmax, as evaluation makes
them (`rollout.segment`).
"""

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ssync_jax import checkpoints, errors, rollout
from ssync_jax.data import transforms
from ssync_jax.objectives import resample

FITS = ("squash", "pad")


@dataclasses.dataclass(frozen=True)
class Prediction:
    """What the model sees in one video.

    Attributes:
        masks: int32 `[T, H, W]` decoder slot id per pixel of the input frames.
        encoder_masks: int32 `[T, H, W]` slot id of the encoder's slot attention per pixel.
        slots: float32 `[T, S, D]` corrected slots per frame.
        enc_logits: float32 `[T, h, w, S]` slot-attention logits on the encoder's patch grid, or
            None unless asked for (`with_maps=True`).
        dec_logits: float32 `[T, h, w, S]` decoder alpha logits on the same grid (area-averaged
            from a finer decoder), or None unless asked for.
    """

    masks: np.ndarray
    encoder_masks: np.ndarray
    slots: np.ndarray
    enc_logits: np.ndarray | None = None
    dec_logits: np.ndarray | None = None


class Predictor:
    """A trained video model ready to segment videos; build it with `load`.

    Attributes:
        model: the video model (`ssync_jax.models.build_model(config.model)`).
        params: its params.
        config: the experiment config it was trained with (reads `data.image_size`,
            `data.normalization`, `data.bicubic`, `eval.chunk_length`, `seed`).
    """

    def __init__(self, model, params: Any, config: ml_collections.ConfigDict):
        self.model = model
        self.params = params
        self.config = config
        self.image_size = tuple(int(side) for side in config.data.image_size)
        self.rollout = rollout.Rollout(model, config.eval.chunk_length, config.seed)
        # Apart from the model's program, so that the model compiles once per Predictor whatever the
        # videos' resolutions; the logits are always made (they are small), so with_maps or not runs
        # the same program.
        self._prediction = jax.jit(_prediction, static_argnames="output_size")

    def predict(
        self, video: np.ndarray, with_maps: bool = False, fit: str = "squash", boxes: np.ndarray | None = None
    ) -> Prediction:
        """Segments a video into slots.

        Args:
            video: uint8 `[T, H, W, 3]` RGB frames of any size, T >= 1 (e.g. from
                `ssync_jax.video_io.read_video`).
            with_maps: also return the patch-grid logits (`enc_logits`, `dec_logits`).
            fit: how frames of another aspect ratio than the model's input meet it (see `FITS`):
                "squash" resizes them to it (objects stretched); "pad" first pads them to its aspect
                ratio by repeating the edge pixels, so nothing is stretched, and cuts the masks back.
            boxes: for a model with box-conditioned slots, the objects' boxes in the first frame:
                `[K, 4]` (y_min, x_min, y_max, x_max) as fractions of the frame, K < the slot count.

        Returns:
            The `Prediction`, masks at the input's (H, W).

        Raises:
            ValueError: `video` is not non-empty uint8 `[T, H, W, 3]`, or `fit` is unknown.
        """
        video = _checked_video(video)
        if fit not in FITS:
            raise errors.ConfigError(f"fit must be one of {FITS}, got {fit!r}.")
        height, width = video.shape[1:3]
        rows, cols = padding_to_aspect((height, width), self.image_size) if fit == "pad" else ((0, 0), (0, 0))
        padded = np.pad(video, ((0, 0), rows, cols, (0, 0)), mode="edge")  # [T, H', W', 3]
        frames = transforms.resize_bicubic(padded, self.image_size, self.config.data.bicubic)  # [T, h, w, 3]
        frames = transforms.normalize(frames, self.config.data.normalization)  # [T, h, w, 3]
        if boxes is not None:  # Fractions of the frame -> of the padded frame.
            scale = np.array([height, width, height, width], np.float32) / np.tile(padded.shape[1:3], 2)
            offset = np.array([rows[0], cols[0], rows[0], cols[0]], np.float32) / np.tile(padded.shape[1:3], 2)
            boxes = np.asarray(boxes, np.float32) * scale + offset
        prediction = self.predict_frames(frames, padded.shape[1:3], with_maps, boxes)
        inside = (slice(None), slice(rows[0], rows[0] + height), slice(cols[0], cols[0] + width))
        return dataclasses.replace(
            prediction, masks=prediction.masks[inside], encoder_masks=prediction.encoder_masks[inside]
        )

    def predict_frames(
        self,
        frames: np.ndarray,
        output_size: tuple[int, int],
        with_maps: bool = False,
        boxes: np.ndarray | None = None,
    ) -> Prediction:
        """Segments frames that are already model input, e.g. an evaluation batch's video.

        Args:
            frames: float32 `[T, h, w, 3]`, (h, w) = `config.data.image_size`, normalised as in training.
            output_size: (H, W) of the returned masks, e.g. the ground-truth label resolution.
            with_maps: also return the patch-grid logits.
            boxes: first-frame object boxes `[K, 4]` for a box-conditioned model (see `predict`).

        Returns:
            The `Prediction`, masks at `output_size`.

        Raises:
            ValueError: `frames` is not float `[T, h, w, 3]` at the model's input size with T >= 1, or
            `output_size` is not a positive (H, W).
        """
        frames = np.asarray(frames)
        if (
            not np.issubdtype(frames.dtype, np.floating)
            or frames.ndim != 4
            or frames.shape[0] == 0
            or frames.shape[1:] != (*self.image_size, 3)
        ):
            raise errors.ConfigError(
                f"frames must be float [T >= 1, {self.image_size[0]}, {self.image_size[1]}, 3] normalised model "
                f"input, got {frames.dtype} {frames.shape}; pass uint8 frames of any size to Predictor.predict instead."
            )
        output_size = tuple(int(side) for side in output_size)
        if len(output_size) != 2 or min(output_size) < 1:
            raise errors.ConfigError(f"output_size must be a positive (height, width), got {output_size}.")
        frames = frames.astype(np.float32, copy=False)
        then = functools.partial(self._prediction, output_size=output_size)
        conditioning = self._conditioning(boxes)
        pieces = []
        for _, chunk in self.rollout.chunks(self.params, frames[None], pad=True, then=then, conditioning=conditioning):
            if not with_maps:
                chunk = {name: value for name, value in chunk.items() if not name.endswith("_logits")}
            # To the host chunk by chunk: full-resolution masks of a long video need not fit on the device.
            pieces.append(jax.device_get(chunk))
        joined = {name: np.concatenate([p[name][0] for p in pieces]) for name in pieces[0]}
        return Prediction(**joined)


    def _conditioning(self, boxes: np.ndarray | None) -> np.ndarray | None:
        """The slot initialiser's input: boxes padded with empty ones to [1, S-1, 4], or None."""
        num_boxes = self.config.model.num_slots - 1
        if self.config.model.initializer.name != "box_conditioned":
            if boxes is not None:
                raise errors.ConfigError("boxes were given, but this model's slots are not box-conditioned; leave them out.")
            return None
        if boxes is None:
            raise errors.ConfigError(
                "This model's slots are conditioned on the objects' boxes in the first frame (SAVi's protocol); "
                "pass boxes=[[y_min, x_min, y_max, x_max], ...] as fractions of the frame (predict CLI: --boxes)."
            )
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if len(boxes) > num_boxes:
            raise errors.ConfigError(f"{len(boxes)} boxes for {num_boxes} object slots; pass at most {num_boxes}.")
        return np.pad(boxes, ((0, num_boxes - len(boxes)), (0, 0)))[None]


def _prediction(outputs: dict[str, jax.Array], output_size: tuple[int, int]) -> dict[str, jax.Array]:
    """A chunk's `Prediction` fields, `[1, L, ...]`: segmentations at `output_size`, slots, patch-grid logits."""
    ids = rollout.segment(outputs["dec_masks"], outputs["enc_attn"], output_size)
    enc_logits, dec_logits, grid = resample.maps_on_encoder_grid(outputs["enc_logits"], outputs["dec_logits"])
    on_grid = (*enc_logits.shape[:2], *grid, enc_logits.shape[-1])
    return {
        "masks": ids["dec_ids"],  # [1, L, H, W]
        "encoder_masks": ids["enc_ids"],  # [1, L, H, W]
        "slots": outputs["slots"].astype(jnp.float32),  # [1, L, S, D]
        "enc_logits": enc_logits.reshape(on_grid).astype(jnp.float32),  # [1, L, h, w, S]
        "dec_logits": dec_logits.reshape(on_grid).astype(jnp.float32),  # [1, L, h, w, S]
    }


def padding_to_aspect(size: tuple[int, int], aspect_of: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) pixels that give `size` the aspect ratio of `aspect_of`, centred.

    Args:
        size: (H, W) of the frames.
        aspect_of: (h, w) whose ratio to reach, e.g. the model's input size.

    Returns:
        The padding of the rows and of the columns (one of them (0, 0)).
    """
    height, width = size
    target_height = max(height, round(width * aspect_of[0] / aspect_of[1]))
    target_width = max(width, round(height * aspect_of[1] / aspect_of[0]))
    rows, cols = target_height - height, target_width - width
    return (rows // 2, rows - rows // 2), (cols // 2, cols - cols // 2)


def _checked_video(video: Any) -> np.ndarray:
    """The video as a uint8 `[T, H, W, 3]` array, or a ValueError saying what is wrong and the fix."""
    video = np.asarray(video)
    if video.ndim != 4:
        fix = "add a time axis (video[None]) for one image" if video.ndim == 3 else "pass [T, H, W, 3] frames"
        raise errors.ConfigError(f"video must be uint8 [T, H, W, 3], got {video.ndim} axes {video.shape}; {fix}.")
    if video.shape[-1] != 3:
        raise errors.ConfigError(
            f"video must have 3 (RGB) channels, got shape {video.shape}; drop alpha with video[..., :3] or "
            "repeat grey frames with np.repeat(video, 3, axis=-1)."
        )
    if video.dtype != np.uint8:
        raise errors.ConfigError(
            f"video must be uint8 RGB in [0, 255], got dtype {video.dtype}; convert floats in [0, 1] with "
            "(video * 255).round().astype(np.uint8)."
        )
    if 0 in video.shape:
        raise errors.ConfigError(f"video is empty (shape {video.shape}); pass at least one frame of at least 1x1 pixels.")
    return video


def load(
    path: str | os.PathLike | None = None, step: int | None = None, config: ml_collections.ConfigDict | None = None
) -> Predictor:
    """A `Predictor` from a training workdir, a model directory or an orbax params checkpoint
    (`checkpoints.load_model`).

    Args:
        path: a training workdir, local or in a bucket (gs://...), holding `checkpoints/` and the
            `config.json` main.py writes; a model directory (`python -m ssync_jax.tools.save_model`);
            or an orbax `{"params": ...}` checkpoint such as `python -m
            ssync_jax.tools.import_torch_checkpoint` writes. None: the model shipped with the
            package (`checkpoints.SHIPPED_MODEL`, the default config trained by its README command).
        step: the workdir checkpoint to load; None for the latest.
        config: the experiment config; required for a params checkpoint, else read from
            `config.json`.

    Returns:
        The predictor, params on this process's first device.

    Raises:
        FileNotFoundError: `path` does not exist, holds no checkpoint (or not of `step`), or a
            workdir has no config.json and no `config` was given.
        ValueError: `path` is a file or one step directory of a workdir, or a params checkpoint comes
            without `config` or with `step`.
    """
    model, params, config, _ = checkpoints.load_model(path, config, step)
    return Predictor(model, params, config)
