"""Slot masks for your own videos from a trained model.

    predictor = inference.load("workdirs/synthetic")            # a training workdir, latest step
    predictor = inference.load("checkpoints/ssync_movi_c", config=movi_c.get_config())  # params only
    prediction = predictor.predict(video)                        # uint8 [T, H, W, 3], any H, W
    prediction.masks                                             # int32 [T, H, W] slot ids

Frames go through the input pipeline's bicubic resize to `config.data.image_size` and its
normalisation, then the model `config.eval.chunk_length` frames at a time with the slots carried
from chunk to chunk, exactly as evaluation runs whole videos. Masks are the decoder's (and the
encoder's slot attention's) masks resized bilinearly to the input resolution, then argmax, as
evaluation does (`ssync_jax.metrics.masks_to_ids`).

Compilation: the last chunk is padded to a whole chunk (the model is causal in time, so padding
frames after the video change nothing before them and are dropped), so every video of one frame
size runs on the same two compiled programs (first chunk, continuation chunk), whatever its length.
"""

import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from ssync_jax import checkpoints, metrics, paths
from ssync_jax.data import transforms
from ssync_jax.models import build_model
from ssync_jax.objectives import total_loss

CONFIG_FILE = "config.json"
# What orbax writes at the top of a `StandardCheckpointer` checkpoint (a params checkpoint); a
# workdir's step directories hold it one level down, in their items.
_PYTREE_METADATA = "_METADATA"


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
            `data.normalization`, `eval.chunk_length`, `ssync.grid_shape`, `seed`).
    """

    def __init__(self, model, params: Any, config: ml_collections.ConfigDict):
        self.model = model
        self.params = params
        self.config = config
        self.image_size = tuple(int(side) for side in config.data.image_size)
        self.chunk_length = int(config.eval.chunk_length)
        self._run_chunk = jax.jit(self._chunk)
        self._segment = jax.jit(self._masks_to_ids, static_argnames="output_size")

    def _chunk(
        self, params: Any, video: jax.Array, state: jax.Array | None
    ) -> tuple[dict[str, jax.Array], jax.Array]:
        """The model over one chunk `[1, L, h, w, 3]`: per-frame maps on their grids and the slots to carry.

        Kept apart from the resize to the output size so that the model compiles once per
        Predictor, whatever the videos' resolutions; the logits are always computed (they are small),
        so that asking for them or not runs the same program.
        """
        outputs = self.model.apply(
            {"params": params}, video, state=state, rngs={"slots": jax.random.key(self.config.seed)}
        )
        grid = total_loss.patch_grid(outputs["enc_attn"].shape[2], self.config.get("ssync", {}).get("grid_shape"))
        num_slots = outputs["slots"].shape[2]
        dec_masks = outputs["dec_masks"][0]  # [L, N, S] (on the patch grid) or [L, h', w', S]
        if dec_masks.ndim == 3:
            dec_masks = dec_masks.reshape(-1, *grid, num_slots)  # [L, h, w, S]
        enc_logits, dec_logits, _ = total_loss.maps_on_encoder_grid(outputs, grid)  # [1, L, N, S]
        out = {
            "dec_masks": dec_masks,
            "enc_attn": outputs["enc_attn"][0].reshape(-1, *grid, num_slots),  # [L, h, w, S]
            "slots": outputs["slots"][0].astype(jnp.float32),  # [L, S, D]
            "enc_logits": enc_logits[0].reshape(-1, *grid, num_slots).astype(jnp.float32),  # [L, h, w, S]
            "dec_logits": dec_logits[0].reshape(-1, *grid, num_slots).astype(jnp.float32),  # [L, h, w, S]
        }
        return out, outputs["state"]

    @staticmethod
    def _masks_to_ids(
        dec_masks: jax.Array, enc_attn: jax.Array, output_size: tuple[int, int]
    ) -> dict[str, jax.Array]:
        """Masks `[L, h, w, S]` on their grids -> slot ids `[L, H, W]` at `output_size`, as evaluation makes them."""
        return {
            "masks": metrics.masks_to_ids(dec_masks[None], output_size)[0],  # [L, H, W]
            "encoder_masks": metrics.masks_to_ids(enc_attn[None], output_size)[0],  # [L, H, W]
        }

    def predict(self, video: np.ndarray, with_maps: bool = False) -> Prediction:
        """Segments a video into slots.

        Args:
            video: uint8 `[T, H, W, 3]` RGB frames of any size, T >= 1 (e.g. from
                `ssync_jax.video_io.read_video`).
            with_maps: also return the patch-grid logits (`enc_logits`, `dec_logits`).

        Returns:
            The `Prediction`, masks at the input's (H, W).

        Raises:
            ValueError: `video` is not non-empty uint8 `[T, H, W, 3]`.
        """
        video = _checked_video(video)
        frames = transforms.resize_bicubic(video, self.image_size, self.config.data.bicubic)  # [T, h, w, 3] in [0, 1]
        frames = transforms.normalize(frames, self.config.data.normalization)  # [T, h, w, 3]
        return self.predict_frames(frames, video.shape[1:3], with_maps)

    def predict_frames(
        self, frames: np.ndarray, output_size: tuple[int, int], with_maps: bool = False
    ) -> Prediction:
        """Segments frames that are already model input, e.g. an evaluation batch's video.

        Args:
            frames: float32 `[T, h, w, 3]`, (h, w) = `config.data.image_size`, normalised as in training.
            output_size: (H, W) of the returned masks, e.g. the ground-truth label resolution.
            with_maps: also return the patch-grid logits.

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
            raise ValueError(
                f"frames must be float [T >= 1, {self.image_size[0]}, {self.image_size[1]}, 3] normalised model "
                f"input, got {frames.dtype} {frames.shape}; pass uint8 frames of any size to Predictor.predict instead."
            )
        output_size = tuple(int(side) for side in output_size)
        if len(output_size) != 2 or min(output_size) < 1:
            raise ValueError(f"output_size must be a positive (height, width), got {output_size}.")
        frames = frames.astype(np.float32, copy=False)
        num_frames, length = frames.shape[0], self.chunk_length
        padding = -num_frames % length
        frames = np.pad(frames, ((0, padding), (0, 0), (0, 0), (0, 0)), mode="edge")  # [T', h, w, 3]
        state, pieces = None, []
        for start in range(0, num_frames + padding, length):
            chunk = frames[None, start : start + length]  # [1, L, h, w, 3]
            out, state = self._run_chunk(self.params, chunk, state)
            out.update(self._segment(out.pop("dec_masks"), out.pop("enc_attn"), output_size=output_size))
            if not with_maps:
                out = {name: value for name, value in out.items() if not name.endswith("_logits")}
            # To the host chunk by chunk: full-resolution masks of a long video need not fit on the device.
            pieces.append(jax.device_get(out))
        joined = {name: np.concatenate([p[name] for p in pieces])[:num_frames] for name in pieces[0]}
        return Prediction(**joined)


def _checked_video(video: Any) -> np.ndarray:
    """The video as a uint8 `[T, H, W, 3]` array, or a ValueError saying what is wrong and the fix."""
    video = np.asarray(video)
    if video.ndim != 4:
        fix = "add a time axis (video[None]) for one image" if video.ndim == 3 else "pass [T, H, W, 3] frames"
        raise ValueError(f"video must be uint8 [T, H, W, 3], got {video.ndim} axes {video.shape}; {fix}.")
    if video.shape[-1] != 3:
        raise ValueError(
            f"video must have 3 (RGB) channels, got shape {video.shape}; drop alpha with video[..., :3] or "
            "repeat grey frames with np.repeat(video, 3, axis=-1)."
        )
    if video.dtype != np.uint8:
        raise ValueError(
            f"video must be uint8 RGB in [0, 255], got dtype {video.dtype}; convert floats in [0, 1] with "
            "(video * 255).round().astype(np.uint8)."
        )
    if 0 in video.shape:
        raise ValueError(f"video is empty (shape {video.shape}); pass at least one frame of at least 1x1 pixels.")
    return video


def load(
    path: str | os.PathLike, step: int | None = None, config: ml_collections.ConfigDict | None = None
) -> Predictor:
    """A `Predictor` from a training workdir or an orbax params checkpoint.

    Args:
        path: a training workdir, local or in a bucket (gs://...), holding `checkpoints/` and the
            `config.json` main.py writes; or an orbax `{"params": ...}` checkpoint such as
            `python -m ssync_jax.tools.import_torch_checkpoint` writes.
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
    path = paths.absolute(os.fspath(path))
    location = epath.Path(path)
    if not location.exists():
        raise FileNotFoundError(
            f"No workdir or checkpoint at {path}; pass the --workdir of a training run (python main.py "
            "--config ... --workdir DIR) or an orbax params checkpoint directory."
        )
    if not location.is_dir():
        raise ValueError(
            f"{path} is a file, not a workdir or orbax checkpoint directory; convert the authors' PyTorch "
            "checkpoints first: python -m ssync_jax.tools.import_torch_checkpoint --ckpt FILE --config CONFIG --out DIR"
        )
    if (location / checkpoints.STATE_ITEM).is_dir():
        raise ValueError(
            f"{path} is one step of a workdir's checkpoints; pass the workdir itself (the folder holding "
            "checkpoints/) and the step: load(workdir, step=N)."
        )
    is_params_checkpoint = (location / _PYTREE_METADATA).exists()
    if is_params_checkpoint:
        if config is None:
            raise ValueError(
                f"{path} is a params checkpoint, which holds no config; pass the config it was trained with, "
                "e.g. load(path, config=configs.movi_c.get_config())."
            )
        if step is not None:
            raise ValueError(f"{path} is a params checkpoint with a single step; leave step=None.")
    elif config is None:
        config = _workdir_config(path)
    model = build_model(config.model)
    abstract_params = _abstract_params(model, config)
    if is_params_checkpoint:
        params = checkpoints.restore_params(path, abstract_params)
    else:
        params = _restore_workdir_params(path, abstract_params, step)
    return Predictor(model, params, config)


def _workdir_config(workdir: str) -> ml_collections.ConfigDict:
    """The config main.py wrote to `workdir/config.json`."""
    file = epath.Path(workdir) / CONFIG_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"{workdir} is neither a training workdir (no {CONFIG_FILE}, which main.py writes) nor an orbax "
            "params checkpoint (no _METADATA); pass the --workdir of a python main.py run or an imported params "
            "checkpoint, or give the config: load(path, config=...)."
        )
    return ml_collections.ConfigDict(json.loads(file.read_text()))


def _abstract_params(model, config: ml_collections.ConfigDict) -> Any:
    """The params' shapes (as training initialises them), every leaf placed on this process's first device."""
    video = jax.ShapeDtypeStruct((1, config.data.chunk_length, *config.data.image_size, 3), jnp.float32)
    rngs = {"params": jax.random.key(0), "slots": jax.random.key(1)}
    shapes = jax.eval_shape(lambda v: model.init(rngs, v)["params"], video)
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device), shapes)


def _restore_workdir_params(workdir: str, abstract_params: Any, step: int | None) -> Any:
    """The params of the workdir's checkpoint at `step` (None: the latest).

    Only the params of the train state are read (orbax partial restore): no optimizer is built
    and its state never leaves the disk.
    """
    directory = checkpoints.checkpoint_dir(workdir)
    if not epath.Path(directory).is_dir():
        raise FileNotFoundError(
            f"No checkpoint in {directory}; train first (python main.py --config ... --workdir {workdir}) "
            "or point at a workdir that holds checkpoints/."
        )
    item = {"params": abstract_params}
    restore = ocp.args.PyTreeRestore(
        item=item, restore_args=ocp.checkpoint_utils.construct_restore_args(item), partial_restore=True
    )
    manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True))
    try:
        steps = sorted(manager.all_steps())
        if not steps or (step is not None and step not in steps):
            wanted = "a checkpoint" if step is None else f"a checkpoint of step {step}"
            raise FileNotFoundError(
                f"No {wanted} in {directory} (steps there: {steps}); pick one of those steps, or train "
                f"first (python main.py --config ... --workdir {workdir})."
            )
        step = steps[-1] if step is None else step
        restored = manager.restore(step, args=ocp.args.Composite(**{checkpoints.STATE_ITEM: restore}))
    finally:
        manager.close()
    return restored[checkpoints.STATE_ITEM]["params"]
