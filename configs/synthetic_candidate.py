r"""Candidate default: object discovery on generated MOVi-A-like videos in ~15 minutes on a 2-core CPU.

Draft while exploring (benchmarks/learning.py, workdirs/explore); values are measured, not final.

    python main.py --config configs/synthetic_candidate.py --workdir workdirs/synthetic_candidate
"""

import ml_collections

from configs import common


def get_config(variant: str = "ssync") -> ml_collections.ConfigDict:
    """Args: variant: "ssync" (default) or "base" (the same model without the SSync losses)."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    num_slots = ml_collections.FieldReference(7)  # The model's, and the boxes' rows + 1.
    image_size = ml_collections.FieldReference((32, 32))  # One value for the data and the model.

    # Input pipeline (ssync_jax/data/pipeline.py).
    config.data = common.data(
        "synthetic_movi/a_32x32_8frames",  # Generated on first use (~15 s).
        image_size=image_size,
        chunk_length=2,
        normalization="zero_one",
        bicubic="pil",
        eval_resolution="dataset",
        global_batch_size=8,
        eval_batch_size=8,
        num_workers=0,
        num_slots=num_slots,
        prefetch_buffer_size=2,
    )

    config.model = ml_collections.ConfigDict(
        dict(
            num_slots=num_slots,
            slot_dim=64,
            image_size=image_size,
            dtype="float32",
            init_scheme="flax",
            initializer=dict(name="gaussian"),
            encoder=dict(
                backbone="savi_cnn",
                cnn_features=(32, 32, 32, 32),
                cnn_strides=(2, 2, 1, 1),
                position_embedding=True,
                backbone_dtype="float32",
                freeze_backbone=False,
            ),
            corrector=dict(num_iterations=2, first_frame_iterations=3, mlp_multiplier=4, eps=1e-8, gru_state="slots"),
            predictor=dict(num_blocks=1, num_heads=4, mlp_multiplier=4, attention_logit_scale="rsqrt_head_dim"),
            decoder=common.spatial_broadcast_decoder(
                resolution=(8, 8), features=(32, 32), upsample=(False, False), kernel_size=3, patch_size=4
            ),
        )
    )

    config.losses = common.losses(variant, reconstruction=1.0, slot_contrast=0.5, ssync=1.0, ssync_warmup=0.3)
    config.ssync = common.ssync(merge_iou_threshold=0.7)
    config.loss_group_size = ml_collections.config_dict.placeholder(int)
    config.optimizer = common.adam(learning_rate=4e-4, warmup_steps=200, final_lr_fraction=0.5, grad_clip_norm=0.05)

    common.set_loop(
        config, 10_000, log_every=100, image_every=1000, eval_every=1000, checkpoint_every=1000, keep_best=0
    )
    config.eval = common.evaluation(chunk_length=8, num_true_ids=6, fg_ari_without_foreground="skip")
    return config
