"""The training objective: total loss, named terms and SSync statistics, built from the config.

Config, the paper's MOVi-C setting (each loss's settings and their defaults are its function's
keyword arguments, see `registry`; "weight" and "warmup_fraction" are every loss's):

    losses = {
        "reconstruction": {"weight": 1.0},
        "slot_contrast": {"weight": 0.5, "temperature": 0.1, "batch_contrast": True},
        "ssync_boundary": {"weight": 1.0, "warmup_fraction": 0.3},
        "ssync_interior": {"weight": 1.0, "warmup_fraction": 0.3},
    }
    ssync = {"merge_iou_threshold": 0.7, "min_diff_boundary": 1, "min_same_boundary": 1, "max_diff_interior": 1}
    loss_group_size = 64

Unknown losses, settings and `ssync` keys are rejected when the function is built, outside jit.

    loss_fn = build_loss_fn(config.losses, config.ssync, config.loss_group_size)
    total, terms, stats = loss_fn(outputs, step, total_steps)  # inside the jitted train step

`outputs`: the video model's (`ssync_jax.models.VideoModel`); only what the configured losses read
must be present: "slots", "reconstruction", "target", and "enc_logits" [B, T, H, W, S] /
"dec_logits" [B, T, Hd, Wd, S] on their grids (the decoder's is area-averaged onto the encoder's).

Returned:
    total: scalar, Σ weight · active · term.
    terms: {loss name: scalar}, each term UNWEIGHTED and computed even during its warm-up, so its
        curve can be logged from step 0.
    stats: "ssync/boundary_fraction", "ssync/interior_fraction" (fraction of all patches
        selected), "ssync/merged_slots" (per video, mean over the batch) when a loss reads SSync's
        selections, and "<loss name>/active" (0. or 1.) for each loss with a warm-up.
Warm-up: a loss is active from step round(warmup_fraction · total_steps) on (step 30_000 of
100_000 for the paper's 0.3), decided from the traced step inside jit, so it never recompiles.
"""

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

# The loss modules register their losses when imported.
from ssync_jax import errors
from ssync_jax.objectives import reconstruction, registry, resample, slot_contrast, srl, ssync  # noqa: F401

Terms = dict[str, jax.Array]
LossFn = Callable[[Mapping[str, jax.Array], jax.Array | int, jax.Array | int], tuple[jax.Array, Terms, Terms]]
# `config.ssync`: the settings of `ssync.pseudo_labels`, read from its signature.
SSYNC_SETTINGS = {
    name: p.default
    for name, p in inspect.signature(ssync.pseudo_labels).parameters.items()
    if p.default is not inspect.Parameter.empty
}


def uses_ssync(losses: Any) -> bool:
    """Whether a `config.losses` section trains with SSync: one of its losses reads SSync's pseudo-labels
    or selections (`SSYNC_INPUTS`), whatever its name. The one rule the objective, its statistics and
    the TensorBoard panels follow. Here, not in `registry`: this module imports every loss module, so
    every built-in loss is registered before the question is asked."""
    names = losses.keys() if hasattr(losses, "keys") else losses
    known = [registry.LOSSES[name] for name in names if name in registry.LOSSES]
    return any(set(registry.loss_inputs(function)) & set(registry.SSYNC_INPUTS) for function in known)


def build_loss_fn(
    losses: Mapping[str, Any], ssync_config: Mapping[str, Any] | None = None, group_size: int | None = None
) -> LossFn:
    """Validates the loss config and returns the pure objective `(outputs, step, total_steps)`.

    Args:
        losses: {loss name: {setting: value}}, names from `registry.LOSSES`; omitted settings take
            the function's defaults.
        ssync_config: the `ssync` section, settings of `ssync.pseudo_labels`.
        group_size: clips per loss group (`config.loss_group_size`): the batch is split into
            groups of this many clips, every term is computed within each group (SlotContrast's
            negatives, SSync's pooling over selected patches) and the terms are averaged over
            groups. This is what data-parallel PyTorch does when each GPU computes the loss on its
            own clips, as the authors' 2 GPUs x 64 clips did; None: one group, the whole batch.

    Returns:
        `loss_fn(outputs, step, total_steps) -> (total, terms, stats)`, see the module docstring.

    Raises:
        ValueError: on an unknown loss or setting, or an out-of-range value.
    """
    losses = _as_dict(losses, "config.losses")
    if not losses:
        raise errors.ConfigError(f"config.losses is empty; configure at least one of {sorted(registry.LOSSES)}.")
    configured = {name: _LossConfig(name, settings) for name, settings in losses.items()}
    target_settings = _resolve("config.ssync", _as_dict(ssync_config or {}, "config.ssync"), SSYNC_SETTINGS)
    if group_size is not None and (isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1):
        raise errors.ConfigError(f"config.loss_group_size must be a positive int or None, got {group_size!r}.")
    inputs = {key for loss in configured.values() for key in loss.inputs}
    ssync_on = uses_ssync(configured)
    uses_maps = ssync_on or bool(inputs & set(registry.MAP_INPUTS))
    model_outputs = sorted((inputs & set(registry.MODEL_OUTPUTS)) | (set(registry.MAP_INPUTS) if uses_maps else set()))

    def group_terms(outputs: Mapping[str, jax.Array]) -> tuple[Terms, Terms]:
        """Unweighted terms and statistics of one group of clips."""
        available, stats = dict(outputs), {}
        if ssync_on:
            labels, enc_logits, dec_logits = ssync.labels_of_maps(
                outputs["enc_logits"], outputs["dec_logits"], **target_settings
            )
            available.update(enc_logits=enc_logits, dec_logits=dec_logits)
            available.update({name: getattr(labels, name) for name in registry.SSYNC_INPUTS})
            stats.update({"ssync/" + k: v for k, v in ssync.ssync_statistics(labels).items()})
        elif uses_maps:
            enc_logits, dec_logits, _ = resample.maps_on_encoder_grid(outputs["enc_logits"], outputs["dec_logits"])
            available.update(enc_logits=enc_logits, dec_logits=dec_logits)
        return {name: loss(available) for name, loss in configured.items()}, stats

    def loss_fn(
        outputs: Mapping[str, jax.Array], step: jax.Array | int, total_steps: jax.Array | int
    ) -> tuple[jax.Array, Terms, Terms]:
        missing = [key for key in model_outputs if key not in outputs]
        if missing:
            raise KeyError(
                f"config.losses {sorted(configured)} read model outputs {missing}, which are missing (outputs "
                f"has {sorted(outputs)}); return them from the model or remove the losses that read them."
            )
        outputs = {key: outputs[key] for key in model_outputs}
        if group_size is None:
            terms, stats = group_terms(outputs)
        else:
            batch = outputs[model_outputs[0]].shape[0]
            if batch % group_size:
                raise errors.ConfigError(
                    f"The batch of {batch} clips does not split into loss groups of "
                    f"config.loss_group_size={group_size}; make the batch a multiple of it."
                )
            grouped = {k: v.reshape(batch // group_size, group_size, *v.shape[1:]) for k, v in outputs.items()}
            terms, stats = jax.tree.map(lambda x: jnp.mean(x, axis=0), jax.vmap(group_terms)(grouped))
        total = jnp.zeros((), jnp.float32)
        for name, term in terms.items():
            loss = configured[name]
            if loss.warmup_fraction > 0:
                # Rounded so that float error in 0.3 * 100_000 cannot push the switch a step late.
                first_step = jnp.round(loss.warmup_fraction * jnp.asarray(total_steps, jnp.float32))
                active = jnp.asarray(step) >= first_step
                stats[name + "/active"] = active.astype(jnp.float32)
                term = jnp.where(active, term, 0.0)
            total = total + loss.weight * term
        return total, terms, stats

    return loss_fn


class _LossConfig:
    """One entry of `config.losses`: its function, inputs, settings, weight and warm-up, validated."""

    def __init__(self, name: str, settings: Any):
        if name not in registry.LOSSES:
            raise errors.ConfigError(f"Unknown loss '{name}' in config.losses; known losses: {sorted(registry.LOSSES)}.")
        self.function = registry.LOSSES[name]
        self.inputs = registry.loss_inputs(self.function)
        defaults = {**registry.SCHEDULE_DEFAULTS, **registry.loss_settings(self.function)}
        where = "config.losses." + name
        resolved = _resolve(where, _as_dict(settings, where), defaults)
        self.weight = resolved.pop("weight")
        self.warmup_fraction = resolved.pop("warmup_fraction")
        self.settings = resolved
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)):
            raise errors.ConfigError(f"{where}.weight must be a number, got {self.weight!r}.")
        if not 0.0 <= self.warmup_fraction <= 1.0:
            raise errors.ConfigError(f"{where}.warmup_fraction must lie in [0, 1], got {self.warmup_fraction!r}.")
        for key, value in resolved.items():
            default = defaults[key]
            if key in ("temperature", "group_size") and not (isinstance(value, (int, float)) and value > 0):
                raise errors.ConfigError(f"{where}.{key} must be positive, got {value!r}.")
            if default is None:
                continue
            if isinstance(default, bool) != isinstance(value, bool) or not isinstance(value, type(default) | int):
                raise errors.ConfigError(f"{where}.{key} must be a {type(default).__name__} like its default {default!r}, got {value!r}.")

    def __call__(self, available: Mapping[str, jax.Array]) -> jax.Array:
        return self.function(**{key: available[key] for key in self.inputs}, **self.settings)


def _as_dict(section: Any, where: str) -> dict[str, Any]:
    if hasattr(section, "to_dict"):
        section = section.to_dict()
    if not isinstance(section, Mapping):
        raise errors.ConfigError(f"{where} must be a mapping (dict or ConfigDict), got {type(section).__name__}.")
    return dict(section)


def _resolve(where: str, settings: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The defaults overridden by `settings`, rejecting names the defaults do not know."""
    unknown = sorted(set(settings) - set(defaults))
    if unknown:
        raise errors.ConfigError(f"Unknown setting(s) {unknown} in {where}; allowed: {sorted(defaults)}.")
    return {**defaults, **settings}
