"""`config.model` sections for the paper's models (the schema `build_model` reads)."""

import ml_collections


def dinov2_feature_model(
    dinov2_variant: str = "vit_s14",
    num_slots: int = 11,
    slot_dim: int = 64,
    image_size: tuple[int, int] = (336, 336),
    weights: str | None = None,
) -> ml_collections.ConfigDict:
    """The SSync/VideoSAUR model: frozen DINOv2, slot attention, transformer predictor, MLP decoder.

    Args:
        dinov2_variant: "vit_s14" (MOVi-C, COCO) or "vit_b14" (MOVi-E, YT-VIS).
        num_slots: Slots per frame.
        slot_dim: Slot width.
        image_size: Model input (height, width), multiples of 14.
        weights: DINOv2 weights (Hugging Face directory, hub name, or timm file); None keeps random ones.

    Returns:
        A `config.model` section.
    """
    return ml_collections.ConfigDict(
        dict(
            num_slots=num_slots,
            slot_dim=slot_dim,
            image_size=image_size,
            dtype="float32",  # Computation dtype of the trainable parts.
            # Parameter initialisation: "torch" draws as the authors' PyTorch code (PyTorch's defaults,
            # Xavier in the predictor's attention), "flax" as SAVi's JAX code (ssync_jax/models/layers.py).
            init_scheme="torch",
            initializer=dict(name="fixed_learned"),  # "fixed_learned" | "gaussian" | "box_conditioned"
            encoder=dict(
                backbone="dinov2",  # "dinov2" | "savi_cnn" | "resnet34"
                dinov2_variant=dinov2_variant,
                weights=ml_collections.config_dict.placeholder(str) if weights is None else weights,
                backbone_dtype="float32",  # "bfloat16" halves the frozen ViT's cost on accelerators.
                freeze_backbone=True,
                position_embedding=False,  # Grid position embedding for CNN maps.
                cnn_features=(32, 32, 32, 32),
                cnn_strides=(1, 1, 1, 1),
            ),
            corrector=dict(
                num_iterations=2,
                first_frame_iterations=3,
                mlp_multiplier=4,
                eps=1e-8,
                # The GRU continues from the LayerNormed slots, as the authors' code does ("slots": SAVi's).
                gru_state="normalized_slots",
            ),
            predictor=dict(
                num_blocks=1,
                num_heads=4,
                mlp_multiplier=4,
                # Attention logits q.k * sqrt(d_head), as the authors' predictor computes them (their
                # checkpoints were trained so); "rsqrt_head_dim" is standard attention (SAVi).
                attention_logit_scale="sqrt_head_dim",
            ),
            decoder=dict(
                name="mlp",  # "mlp" (patch features) | "spatial_broadcast" (pixels, flow, depth)
                hidden_sizes=(1024, 1024, 1024),
                output_size=3,
                resolution=(8, 8),
                features=(64, 64, 64, 64),
                upsample=(True, True, True, False),
                kernel_size=5,  # Spatial broadcast: square convolution kernel side.
                # Spatial broadcast only: p > 1 decodes p x p pixel patches per output position
                # (output_size * p * p channels), so a decoder on the encoder's grid reconstructs frames.
                patch_size=1,
            ),
        )
    )
