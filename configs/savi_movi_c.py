r"""SSync as a plug-in for a SAVi-style model on MOVi-C, the whole recipe in this file.

SAVi-S's CNN encoder at 64² (4 layers of 32 channels, 5x5, stride 1: a 64x64 grid), unconditional
learned slots (11 of 128), slot attention 2 iterations (3 on the first frame) with SAVi's
conventions (GRU on the slots, standard attention scale, Flax initialisation), a spatial-broadcast
decoder from 8x8 with 3 upsamplings to 64² reconstructing the frames; 6-frame clips, batch 64,
Adam 2e-4 (2,500 warm-up steps, exponential decay to 0.5x), clip 0.05, 100k steps. The SSync
variant adds the boundary and interior losses from 30 % of training on, merge τ 0.7, comparing the
encoder's 64x64 slot attention with the decoder's 64² alpha masks.

    python main.py --config configs/savi_movi_c.py --workdir workdirs/savi_movi_c \
        --config.data.data_dir ~/tensorflow_datasets

Expected: no paper number for this combination. For reference, unconditional SAVi on MOVi-C
reaches video FG-ARI 22.2 / mBO 13.6 (SSync paper, Table 1): the base model,
`configs/savi_movi_c.py:base` (reconstruction alone); the SSync variant is our experiment.
"""

import ml_collections

from configs import common


def get_config(variant: str = "ssync") -> ml_collections.ConfigDict:
    """Args: variant: "ssync" (default) or "base" (SAVi alone)."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    num_slots = ml_collections.FieldReference(11)  # The model's, and the boxes' rows + 1.
    image_size = ml_collections.FieldReference((64, 64))

    config.data = common.data(
        "movi_c/128x128:1.0.0",
        image_size=image_size,
        chunk_length=6,  # SAVi's training clips.
        normalization="zero_one",
        bicubic="pil",
        eval_resolution="dataset",
        global_batch_size=64,
        eval_batch_size=8,
        num_workers=8,
        num_boxes=num_slots - 1,  # One row per object slot (the first slot is the background's).
        prefetch_buffer_size=4,
        flip_prob=0.5,
        fields=("video", "segmentations"),
        train_split="train",
        eval_split="validation",
        data_dir=None,  # TFDS's default directory.
        precomputed_features=None,  # Frames, the backbone run every step.
        keep_decoded=False,  # ~10k videos: too many to keep decoded.
    )
    config.model = ml_collections.ConfigDict(
        dict(
            num_slots=num_slots,
            slot_dim=128,
            image_size=image_size,
            dtype="float32",
            init_scheme="flax",
            initializer=dict(name="fixed_learned"),
            encoder=dict(
                backbone="savi_cnn",
                cnn_features=(32, 32, 32, 32),
                cnn_strides=(1, 1, 1, 1),
                position_embedding=True,
                backbone_dtype="float32",
                freeze_backbone=False,
                token_norm="none",  # "layernorm": tokens at DINOv2's scale.
                backbone_from=ml_collections.config_dict.placeholder(str),  # Another run's trained backbone: its workdir or model dir.
                backbone_from_step=ml_collections.config_dict.placeholder(int),  # Its checkpoint (None: the latest).
            ),
            corrector=dict(num_iterations=2, first_frame_iterations=3, mlp_multiplier=4, eps=1e-8, gru_state="slots"),
            predictor=dict(num_blocks=1, num_heads=4, mlp_multiplier=4, attention_logit_scale="rsqrt_head_dim"),
            decoder=common.spatial_broadcast_decoder(
                resolution=(8, 8), features=(64, 64, 64, 64), upsample=(True, True, True, False), kernel_size=5, patch_size=1,
                target="video",
            ),
        )
    )
    config.losses = ml_collections.ConfigDict()
    config.losses.reconstruction = dict(weight=1.0)  # Pixel MSE, SAVi's objective (no SlotContrast).
    if common.ssync_on(variant):  # Both SSync losses, from 30 % of training on.
        config.losses.ssync_boundary = dict(weight=1.0, warmup_fraction=0.3)
        config.losses.ssync_interior = dict(weight=1.0, warmup_fraction=0.3)
    config.ssync = common.ssync(merge_iou_threshold=0.7, min_diff_boundary=1, min_same_boundary=1, max_diff_interior=1)
    config.loss_group_size = ml_collections.config_dict.placeholder(int)  # The whole batch.
    config.optimizer = common.adam(learning_rate=2e-4, warmup_steps=2_500, final_lr_fraction=0.5, grad_clip_norm=0.05, b1=0.9, b2=0.999)

    # Loop (ssync_jax/train.py; configs/synthetic.py says what each key does) and evaluation.
    config.num_train_steps = 100_000
    config.stop_after_step = ml_collections.config_dict.placeholder(int)  # None: run to the end.
    config.log_every_steps = 100
    config.image_every_steps = 2_000
    config.eval_every_steps = 10_000
    config.checkpoint_every_steps = 2_000
    config.max_checkpoints_to_keep = 2
    config.keep_best_checkpoints = 1
    config.keep_checkpoint_steps = ()
    config.init_from = ml_collections.config_dict.placeholder(str)  # None: a fresh start.
    config.init_from_step = ml_collections.config_dict.placeholder(int)  # None: its latest checkpoint.
    config.init_from_params_only = False
    config.async_checkpointing = True
    config.num_profile_steps = 0
    config.shard_params = False
    config.steps_per_dispatch = 1
    config.eval = common.evaluation(chunk_length=24, num_true_ids=11, fg_ari_without_foreground="skip", params_checkpoint=None, protocol="config")
    return config
