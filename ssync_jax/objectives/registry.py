"""The losses a config can name, registered beside their functions (as SAVi registers its losses).

A loss is a pure function whose parameters without defaults are its inputs, taken by name from
`INPUTS`, and whose parameters with defaults are its settings, overridable from the config:

    @registry.register("slot_contrast")
    def slot_contrast_loss(slots, temperature=0.1, batch_contrast=True): ...

    config.losses = {"slot_contrast": {"weight": 0.5, "temperature": 0.1}}

Every configured loss also takes "weight" (default 1.0) and "warmup_fraction" (default 0.0, the
fraction of training before it switches on). Adding a loss is writing its function with the
decorator, in a module that `total_loss` imports.
"""

import inspect
from collections.abc import Callable
from typing import Any

# What a loss function may take as inputs. Model outputs: "slots" [B, T, S, D], "reconstruction"
# and "target"; the two maps patch by patch on the encoder's grid, "enc_logits" and "dec_logits"
# [B, T, N, S]; and SSync's pseudo-labels and selections ("enc_labels", "dec_labels",
# "boundary_mask", "interior_mask", each [B, T, H, W]; `ssync.pseudo_labels`, set by `config.ssync`).
MODEL_OUTPUTS = ("slots", "reconstruction", "target")
MAP_INPUTS = ("enc_logits", "dec_logits")
SSYNC_INPUTS = ("enc_labels", "dec_labels", "boundary_mask", "interior_mask")
INPUTS = MODEL_OUTPUTS + MAP_INPUTS + SSYNC_INPUTS
SCHEDULE_DEFAULTS = {"weight": 1.0, "warmup_fraction": 0.0}

LOSSES: dict[str, Callable[..., Any]] = {}


def register(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: makes the function the loss `name` of `config.losses`."""

    def add(function: Callable[..., Any]) -> Callable[..., Any]:
        if name in LOSSES:
            raise ValueError(f"loss {name!r} is registered twice ({LOSSES[name].__qualname__}, {function.__qualname__})")
        unknown = [p for p in loss_inputs(function) if p not in INPUTS]
        if unknown:
            raise ValueError(f"loss {name!r} takes inputs {unknown} that are not among {INPUTS}")
        LOSSES[name] = function
        return function

    return add


def loss_inputs(function: Callable[..., Any]) -> tuple[str, ...]:
    """The function's parameters without defaults: the inputs it reads by name."""
    parameters = inspect.signature(function).parameters.values()
    return tuple(p.name for p in parameters if p.default is inspect.Parameter.empty)


def loss_settings(function: Callable[..., Any]) -> dict[str, Any]:
    """The function's parameters with defaults: its settings and their default values."""
    parameters = inspect.signature(function).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
