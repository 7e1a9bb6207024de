"""Models: encoders (DINOv2, SAVi CNNs), slot-attention corrector, predictor, initialisers, decoders.

`build_model(config.model)` composes them into a `VideoModel`; `load_pretrained_backbone` puts the
DINOv2 weights named by `config.model.encoder.weights` into its params; `trainable_mask` marks what
the optimiser updates.
"""

from ssync_jax.models.factory import build_model, load_pretrained_backbone, trainable_mask
from ssync_jax.models.video import Processor, VideoModel

__all__ = ["Processor", "VideoModel", "build_model", "load_pretrained_backbone", "trainable_mask"]
