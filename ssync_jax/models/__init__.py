"""Models: encoders (DINOv2, SAVi CNNs), slot-attention corrector, predictor, initialisers, decoders.

`build_model(config.model)` composes them into a `VideoModel`, `init_params_fn` initialises its params
and `abstract_params` gives their shapes (a checkpoint's restore target); `load_pretrained_backbone` puts the
DINOv2 weights named by `config.model.encoder.weights` into its params, `replace_backbone` any
backbone's (e.g. another run's, `config.model.encoder.backbone_from`); `trainable_mask` marks what
the optimiser updates.
"""

from ssync_jax.models.factory import (
    BACKBONE_NAME,
    abstract_params,
    build_model,
    init_params_fn,
    load_pretrained_backbone,
    replace_backbone,
    trainable_mask,
)
from ssync_jax.models.video import Processor, VideoModel

__all__ = [
    "BACKBONE_NAME",
    "Processor",
    "VideoModel",
    "abstract_params",
    "build_model",
    "init_params_fn",
    "load_pretrained_backbone",
    "replace_backbone",
    "trainable_mask",
]
