"""The training objective: total loss, named terms and SSync statistics, built from the config.

Config (plain dicts or `ml_collections.ConfigDict`s), the paper's MOVi-C setting:

    losses = {
        "reconstruction": {"weight": 1.0},
        "slot_contrast": {"weight": 0.5, "temperature": 0.1, "batch_contrast": True},
        "ssync_boundary": {"weight": 1.0, "warmup_fraction": 0.3},
        "ssync_interior": {"weight": 1.0, "warmup_fraction": 0.3},
    }
    ssync = {"merge_iou_threshold": 0.7, "min_diff_boundary": 1, "min_same_boundary": 1,
             "max_diff_interior": 1, "grid_shape": None}

`LOSS_ARGUMENTS` lists every loss with its arguments and defaults, `SSYNC_TARGET_ARGUMENTS` the
`ssync` section (shared by both SSync losses); anything else is rejected when the function is
built, outside jit. Use:

    loss_fn = build_loss_fn(config.losses, config.ssync)
    total, terms, stats = loss_fn(outputs, step, total_steps)  # inside the jitted train step

`outputs` keys (only those the configured losses need must be present):
    "slots"           [B, T, S, D]       slot_contrast
    "enc_logits"      [B, T, N, S]       ssync_*, srl: last slot-attention logits q·k/√d
    "dec_logits"      [B, T, N, S]       ssync_*, srl: decoder alpha logits; or [B, T, Hd, Wd, S]
                                         from a pixel decoder, area-averaged to the encoder grid
    "reconstruction"  any shape          reconstruction
    "target"          same shape         reconstruction (no gradient)

Returned:
    total: scalar, Σ weight · active · term.
    terms: {loss name: scalar}, each term UNWEIGHTED and computed even during its warm-up, so its
        curve can be logged from step 0; "srl" is the sum of its two directions.
    stats: "ssync/boundary_fraction", "ssync/interior_fraction" (fraction of all patches
        selected), "ssync/merged_slots" (per video, mean over the batch) when an SSync loss is
        configured, and "<loss name>/active" (0. or 1.) for each loss with a warm-up.
Warm-up: a loss is active from step round(warmup_fraction · total_steps) on (step 30_000 of
100_000 for the paper's 0.3), decided from the traced step inside jit, so it never recompiles.
"""

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from ssync_jax.objectives import reconstruction, resample, slot_contrast, srl, ssync

LOSS_ARGUMENTS: dict[str, dict[str, Any]] = {
    "reconstruction": {"weight": 1.0, "warmup_fraction": 0.0},
    "slot_contrast": {
        "weight": 0.5,
        "warmup_fraction": 0.0,
        "temperature": 0.1,
        "batch_contrast": True,
    },
    "ssync_boundary": {"weight": 1.0, "warmup_fraction": 0.3, "temperature": 1.0},
    "ssync_interior": {"weight": 1.0, "warmup_fraction": 0.3, "temperature": 1.0},
    "srl": {"weight": 1.0, "warmup_fraction": 0.0, "temperature": 0.1, "group_size": 4},
}

SSYNC_TARGET_ARGUMENTS: dict[str, Any] = {
    "grid_shape": None,  # (H, W) of the encoder patches; None: a square grid inferred from N.
    "merge_iou_threshold": 0.7,
    "min_diff_boundary": 1,
    "min_same_boundary": 1,
    "max_diff_interior": 1,
}

REQUIRED_OUTPUTS: dict[str, tuple[str, ...]] = {
    "reconstruction": ("reconstruction", "target"),
    "slot_contrast": ("slots",),
    "ssync_boundary": ("enc_logits", "dec_logits"),
    "ssync_interior": ("enc_logits", "dec_logits"),
    "srl": ("enc_logits", "dec_logits"),
}

Terms = dict[str, jax.Array]
LossFn = Callable[
    [Mapping[str, jax.Array], jax.Array | int, jax.Array | int], tuple[jax.Array, Terms, Terms]
]


def build_loss_fn(
    losses: Mapping[str, Any],
    ssync_config: Mapping[str, Any] | None = None,
    group_size: int | None = None,
) -> LossFn:
    """Validates the loss config and returns the pure objective `(outputs, step, total_steps)`.

    Args:
        losses: {loss name: {argument: value}}, names and arguments from `LOSS_ARGUMENTS`;
            omitted arguments take its defaults.
        ssync_config: the `ssync` section, arguments from `SSYNC_TARGET_ARGUMENTS`.
        group_size: clips per loss group (`config.loss_group_size`): the batch is split into
            groups of this many clips, every term is computed within each group (SlotContrast's
            negatives, SSync's pooling over selected patches) and the terms are averaged over
            groups. This is what data-parallel PyTorch does when each GPU computes the loss on its
            own clips, as the authors' 2 GPUs x 64 clips did; None: one group, the whole batch.

    Returns:
        `loss_fn(outputs, step, total_steps) -> (total, terms, stats)`, see the module docstring.

    Raises:
        ValueError: on an unknown loss or argument, or an out-of-range value.
    """
    settings = {
        name: _resolve("config.losses." + name, arguments, LOSS_ARGUMENTS.get(name))
        for name, arguments in _as_dict(losses, "config.losses").items()
    }
    if not settings:
        raise ValueError(
            f"config.losses is empty; configure at least one of {sorted(LOSS_ARGUMENTS)}."
        )
    for name, arguments in settings.items():
        _check_loss_arguments(name, arguments)
    if group_size is not None and (isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1):
        raise ValueError(f"config.loss_group_size must be a positive int or None, got {group_size!r}.")
    target_settings = _resolve("config.ssync", ssync_config or {}, SSYNC_TARGET_ARGUMENTS)
    grid_shape = target_settings.pop("grid_shape")
    uses_maps = any("enc_logits" in REQUIRED_OUTPUTS[name] for name in settings)
    uses_ssync = any(name.startswith("ssync_") for name in settings)
    needed = sorted({key for name in settings for key in REQUIRED_OUTPUTS[name]})

    def group_terms(outputs: Mapping[str, jax.Array]) -> tuple[Terms, Terms]:
        """Unweighted terms and statistics of one group of clips."""
        stats: Terms = {}
        maps = targets = None
        if uses_maps:
            maps = maps_on_encoder_grid(outputs, grid_shape)
        if uses_ssync:
            targets = ssync.ssync_targets(*maps, **target_settings)
            stats.update({"ssync/" + k: v for k, v in ssync.ssync_statistics(targets).items()})
        terms = {
            name: _term(name, arguments, outputs, maps, targets)
            for name, arguments in settings.items()
        }
        return terms, stats

    def loss_fn(
        outputs: Mapping[str, jax.Array], step: jax.Array | int, total_steps: jax.Array | int
    ) -> tuple[jax.Array, Terms, Terms]:
        _check_outputs(outputs, settings)
        outputs = {key: outputs[key] for key in needed}
        if group_size is None:
            terms, stats = group_terms(outputs)
        else:
            batch = outputs[needed[0]].shape[0]
            if batch % group_size:
                raise ValueError(
                    f"The batch of {batch} clips does not split into loss groups of "
                    f"config.loss_group_size={group_size}; make the batch a multiple of it."
                )
            grouped = {k: v.reshape(batch // group_size, group_size, *v.shape[1:]) for k, v in outputs.items()}
            terms, stats = jax.tree.map(lambda x: jnp.mean(x, axis=0), jax.vmap(group_terms)(grouped))
        total = jnp.zeros((), jnp.float32)
        for name, term in terms.items():
            warmup_fraction = settings[name]["warmup_fraction"]
            if warmup_fraction > 0:
                # Rounded so that float error in 0.3 * 100_000 cannot push the switch a step late.
                first_step = jnp.round(warmup_fraction * jnp.asarray(total_steps, jnp.float32))
                active = jnp.asarray(step) >= first_step
                stats[name + "/active"] = active.astype(jnp.float32)
                term = jnp.where(active, term, 0.0)
            total = total + settings[name]["weight"] * term
        return total, terms, stats

    return loss_fn


def _term(
    name: str,
    arguments: dict[str, Any],
    outputs: Mapping[str, jax.Array],
    maps: tuple[jax.Array, jax.Array, tuple[int, int]] | None,
    targets: ssync.SSyncTargets | None,
) -> jax.Array:
    """The unweighted value of one configured loss."""
    if name == "reconstruction":
        return reconstruction.reconstruction_loss(outputs["reconstruction"], outputs["target"])
    if name == "slot_contrast":
        return slot_contrast.slot_contrast_loss(
            outputs["slots"], arguments["temperature"], arguments["batch_contrast"]
        )
    enc_logits, dec_logits, _ = maps
    if name == "ssync_boundary":
        return ssync.boundary_loss(
            dec_logits, targets.enc_labels, targets.boundary_mask, arguments["temperature"]
        )
    if name == "ssync_interior":
        return ssync.interior_loss(
            enc_logits, targets.dec_labels, targets.interior_mask, arguments["temperature"]
        )
    directions = srl.srl_losses(
        enc_logits, dec_logits, arguments["group_size"], arguments["temperature"]
    )
    return directions["encoder"] + directions["decoder"]


def maps_on_encoder_grid(
    outputs: Mapping[str, jax.Array], grid_shape: tuple[int, int] | None
) -> tuple[jax.Array, jax.Array, tuple[int, int]]:
    """Encoder and decoder maps as `[B, T, N, S]` on the encoder grid, and that grid (H, W)."""
    enc_logits = outputs["enc_logits"]  # [B, T, N, S]
    dec_logits = outputs["dec_logits"]  # [B, T, N, S] or [B, T, Hd, Wd, S]
    if enc_logits.ndim != 4:
        raise ValueError(
            f"outputs['enc_logits'] must be [B, T, N, S], got shape {enc_logits.shape}."
        )
    grid_shape = patch_grid(enc_logits.shape[2], grid_shape)
    if dec_logits.ndim == 5:
        if dec_logits.shape[2:4] != grid_shape:
            dec_logits = resample.area_resample_to_grid(dec_logits, grid_shape)  # [B, T, H, W, S]
        dec_logits = dec_logits.reshape(enc_logits.shape)  # [B, T, N, S]
    return enc_logits, dec_logits, grid_shape


def patch_grid(num_patches: int, grid_shape: tuple[int, int] | None = None) -> tuple[int, int]:
    """(h, w) of the encoder's patch grid: `grid_shape` (`config.ssync.grid_shape`) if given, else
    the square grid of `num_patches`."""
    if grid_shape is not None:
        return tuple(grid_shape)
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        raise ValueError(
            f"The encoder gives N={num_patches} patches, not a square grid; set "
            "config.ssync.grid_shape to its (H, W)."
        )
    return side, side


def _as_dict(section: Any, where: str) -> dict[str, Any]:
    if hasattr(section, "to_dict"):
        section = section.to_dict()
    if not isinstance(section, Mapping):
        raise ValueError(
            f"{where} must be a mapping (dict or ConfigDict), got {type(section).__name__}."
        )
    return dict(section)


def _resolve(where: str, arguments: Any, defaults: dict[str, Any] | None) -> dict[str, Any]:
    """The defaults overridden by `arguments`, rejecting names the defaults do not know."""
    if defaults is None:
        name = where.rsplit(".", 1)[-1]
        raise ValueError(
            f"Unknown loss '{name}' in config.losses; known losses: {sorted(LOSS_ARGUMENTS)}."
        )
    arguments = _as_dict(arguments, where)
    unknown = sorted(set(arguments) - set(defaults))
    if unknown:
        raise ValueError(f"Unknown argument(s) {unknown} in {where}; allowed: {sorted(defaults)}.")
    return {**defaults, **arguments}


def _check_loss_arguments(name: str, arguments: dict[str, Any]) -> None:
    where = "config.losses." + name
    value = arguments["weight"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}.weight must be a number, got {value!r}.")
    value = arguments["warmup_fraction"]
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{where}.warmup_fraction must lie in [0, 1], got {value!r}.")
    value = arguments.get("temperature", 1.0)
    if not value > 0:
        raise ValueError(f"{where}.temperature must be positive, got {value!r}.")
    value = arguments.get("group_size", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}.group_size must be a positive int, got {value!r}.")
    value = arguments.get("batch_contrast", True)
    if not isinstance(value, bool):
        raise ValueError(f"{where}.batch_contrast must be True or False, got {value!r}.")


def _check_outputs(outputs: Mapping[str, jax.Array], settings: dict[str, dict[str, Any]]) -> None:
    for name in settings:
        missing = [key for key in REQUIRED_OUTPUTS[name] if key not in outputs]
        if missing:
            raise KeyError(
                f"Loss '{name}' needs model outputs {list(REQUIRED_OUTPUTS[name])} but {missing} "
                f"are missing (outputs has {sorted(outputs)}); return them from the model or "
                f"remove '{name}' from config.losses."
            )
