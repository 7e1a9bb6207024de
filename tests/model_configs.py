"""`config.model` sections for model tests, made from the paper config (configs/movi_c.py)."""

import ml_collections

from configs import movi_c


def dinov2_model(
    variant: str = "vit_s14",
    num_slots: int = 11,
    slot_dim: int = 64,
    image_size: tuple[int, int] = (336, 336),
    weights: str | None = None,
) -> ml_collections.ConfigDict:
    """The MOVi-C model with another DINOv2 variant, slot count, width, input size or weights."""
    config = movi_c.get_config().model
    config.encoder.dinov2_variant = variant
    config.encoder.weights = weights
    config.num_slots = num_slots
    config.slot_dim = slot_dim
    config.image_size = tuple(image_size)
    return config


def cnn_feature_model(
    num_slots: int, slot_dim: int, image_size: tuple[int, int], freeze_backbone: bool = False, **cnn
) -> ml_collections.ConfigDict:
    """The MOVi-C model's slot modules and MLP decoder on a SAVi CNN (`cnn`: its settings)."""
    config = dinov2_model(num_slots=num_slots, slot_dim=slot_dim, image_size=image_size)
    config.encoder = ml_collections.ConfigDict(
        dict(backbone="savi_cnn", backbone_dtype="float32", freeze_backbone=freeze_backbone, **cnn)
    )
    return config
