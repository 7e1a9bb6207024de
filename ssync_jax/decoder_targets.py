"""What a decoder reconstructs: one entry per target, read by the model, the input pipeline's checks and the loop.

    config.model.decoder.target = "features"  # the frozen backbone's tokens (SSync, VideoSAUR, DINOSAUR)
    config.model.decoder.target = "video"     # the input frames (SAVi)
    config.model.decoder.target = "depth"     # log(1 + depth) (SAVi++)
    config.model.decoder.target = "flow"      # forward optical flow (SAVi)

A per-pixel target is cut into the decoder's p x p patches (`config.model.decoder.patch_size`):
the target of a patch is its p·p·channels values. Adding a target is adding an entry here (and,
for a new batch field, carrying that field in the pipeline).
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from ssync_jax import errors


@dataclasses.dataclass(frozen=True)
class Target:
    """One kind of decoder target.

    Attributes:
        field: the batch field it is read from: "video" (the model input itself), another per-pixel
            field the pipeline carries beside the frames (`config.data.fields`), or None for the
            backbone's tokens.
        channels: values per pixel; None for the backbone's tokens (its width).
        transform: applied to the field's values before they are cut into patches.
        description: what it is, for messages and docs.
    """

    field: str | None
    channels: int | None
    transform: Callable[[jax.Array], jax.Array]
    description: str


def _unchanged(values: jax.Array) -> jax.Array:
    return values.astype(jnp.float32)


def _log_depth(depth: jax.Array) -> jax.Array:
    return jnp.log1p(jnp.maximum(depth.astype(jnp.float32), 0.0))


TARGETS: dict[str, Target] = {
    "features": Target(None, None, _unchanged, "the frozen backbone's patch tokens"),
    "video": Target("video", 3, _unchanged, "the input frames, normalised as the encoder sees them"),
    "depth": Target("depth", 1, _log_depth, "log(1 + depth), SAVi++'s depth target"),
    "flow": Target("forward_flow", 2, _unchanged, "the forward optical flow (d_row, d_col) in pixels, SAVi's"),
}


def get(name: str) -> Target:
    """The target called `name`; a ValueError naming the config key and the choices otherwise."""
    if name not in TARGETS:
        raise errors.ConfigError(f"config.model.decoder.target={name!r} is unknown; choose one of {sorted(TARGETS)}.")
    return TARGETS[name]


def side_fields() -> tuple[str, ...]:
    """The batch fields targets are read from besides the frames (what the train step passes the model)."""
    return tuple(sorted({t.field for t in TARGETS.values() if t.field not in (None, "video")}))
