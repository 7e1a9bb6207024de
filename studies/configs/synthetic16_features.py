r"""The paper's regime in miniature: slots on a frozen, trained backbone whose tokens the decoder reconstructs.

Why: SSync's paper trains on a frozen DINOv2 and reconstructs its patch tokens, which come out of a
LayerNorm: one slot cannot repaint distinct per-object features, and the reconstruction loss is
large beside SSync's. This recipe builds that shape from what a CPU can make: stage 1 trains
`studies/configs/synthetic16.py:base,sb` (a CNN on pixels, 16x16 grid); stage 2 (this file) freezes that
CNN, standardises its tokens over their channels as DINOv2's final LayerNorm does
(`token_norm="layernorm"`), and trains fresh slots and the paper's MLP decoder to reconstruct them
(the DINOSAUR / VideoSAUR / SlotContrast shape). docs/RESULTS.md §1.10 has the criteria the regime
was held to before SSync ran in it and what SSync did there.

    python main.py --config studies/configs/synthetic16_features.py:base --workdir workdirs/stage2 \
        --config.model.encoder.backbone_from=studies/backbones/synthetic16_stage1
    python main.py --config studies/configs/synthetic16_features.py:ssync --workdir workdirs/stage2_ssync \
        --config.model.encoder.backbone_from=studies/backbones/synthetic16_stage1 \
        --config.init_from=workdirs/stage2 --config.init_from_step=4500

studies/backbones/synthetic16_stage1 is stage 1 as shipped; it was trained by
`python main.py --config studies/configs/synthetic16.py:base,sb --workdir workdirs/stage1 --config.seed=2`
(`python -m studies.learning --study features_stage1`), and `--config.model.encoder.backbone_from` takes
such a workdir as well.

Data: `synthetic_movi/a_32x32_8frames` (the default's). Model: the stage-1 CNN (4 x 32 channels,
stride 2: a 16x16 grid of 32-channel tokens), frozen, its tokens standardised over the channels;
its grid position embedding and the feature MLP train; 7 slots x 64 from a learned Gaussian; slot
attention (3 iterations on the first frame, 2 after); a one-block transformer predictor; the MLP
decoder (3 x 128, ReLU) per slot and patch, reconstructing each patch's 32 standardised values.
Objective: feature MSE + SlotContrast 0.5; ":ssync" adds SSync's boundary and interior losses (weight
1 each, τ 0.7, from 30 % of training: the paper's settings, unchanged). Training: 15,000 steps of 8
clips of 2 frames, Adam 4e-4 (200 warm-up steps, exponential decay to half), clip 0.05, validation
every 1,500 steps; the checkpoint at 30 % (step 4,500) is kept for SSync runs that branch off it.
"""

import ml_collections

from configs import common

VARIANTS = ("base", "ssync")


def get_config(variant: str = "base") -> ml_collections.ConfigDict:
    """Args: variant: "base" (SSync off) or "ssync" (the SSync losses from 30 % of training)."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    num_slots = ml_collections.FieldReference(7)  # The model's, and the boxes' rows + 1.
    image_size = ml_collections.FieldReference((32, 32))  # One value for the data and the model.

    # Input pipeline (ssync_jax/data/pipeline.py).
    config.data = common.data(
        "synthetic_movi/a_32x32_8frames",  # Generated on first use (its time: docs/RESULTS.md §1.1).
        image_size=image_size,
        chunk_length=2,
        normalization="zero_one",
        bicubic="pil",
        eval_resolution="dataset",
        global_batch_size=8,
        eval_batch_size=8,
        num_workers=0,
        num_boxes=num_slots - 1,  # One row per object slot (the first slot is the background's).
        prefetch_buffer_size=2,
        flip_prob=0.5,
        fields=("video", "segmentations"),
        train_split="train",
        eval_split="validation",
        data_dir=None,  # TFDS's default directory.
        precomputed_features=None,  # Frames, the frozen backbone run every step.
        keep_decoded=True,  # 400 small videos: a few MB decoded.
    )

    # Model (ssync_jax/models/factory.py): stage 1's CNN, frozen, its tokens at DINOv2's scale.
    config.model = ml_collections.ConfigDict(
        dict(
            num_slots=num_slots,
            slot_dim=64,
            image_size=image_size,
            dtype="float32",  # Computation dtype of the trainable parts.
            init_scheme="flax",
            initializer=dict(name="gaussian"),
            encoder=dict(
                backbone="savi_cnn",
                cnn_features=(32, 32, 32, 32),  # Stage 1's (studies/configs/synthetic16.py).
                cnn_strides=(2, 1, 1, 1),
                position_embedding=True,
                backbone_dtype="float32",
                freeze_backbone=True,
                token_norm="layernorm",  # Standardised over the channels, as DINOv2's final LayerNorm.
                backbone_from=ml_collections.config_dict.placeholder(str),  # Required: stage 1's workdir.
                backbone_from_step=ml_collections.config_dict.placeholder(int),  # None: its latest checkpoint.
            ),
            corrector=dict(num_iterations=2, first_frame_iterations=3, mlp_multiplier=4, eps=1e-8, gru_state="slots"),
            predictor=dict(num_blocks=1, num_heads=4, mlp_multiplier=4, attention_logit_scale="rsqrt_head_dim"),
            decoder=common.mlp_decoder(hidden_sizes=(128, 128, 128), target="features", patch_size=1),
        )
    )

    # Objective: feature reconstruction + SlotContrast; `ssync` adds SSync from 30 % on, the paper's settings.
    config.losses = ml_collections.ConfigDict()
    config.losses.reconstruction = dict(weight=1.0)  # Feature MSE.
    config.losses.slot_contrast = dict(weight=0.5, temperature=0.1)
    if common.ssync_on(variant):  # Both SSync losses, from 30 % of training on.
        config.losses.ssync_boundary = dict(weight=1.0, warmup_fraction=0.3)
        config.losses.ssync_interior = dict(weight=1.0, warmup_fraction=0.3)
    config.ssync = common.ssync(merge_iou_threshold=0.7, min_diff_boundary=1, min_same_boundary=1, max_diff_interior=1)
    config.loss_group_size = ml_collections.config_dict.placeholder(int)  # None: the whole global batch.
    config.optimizer = common.adam(learning_rate=4e-4, warmup_steps=200, final_lr_fraction=0.5, grad_clip_norm=0.05, b1=0.9, b2=0.999)

    # Loop (configs/synthetic.py says what each key does) and evaluation: whole 8-frame videos, up to 5
    # objects + background.
    config.num_train_steps = 15_000
    config.stop_after_step = ml_collections.config_dict.placeholder(int)  # None: run to the end.
    config.log_every_steps = 100
    config.image_every_steps = 1500
    config.eval_every_steps = 1500
    config.checkpoint_every_steps = 1500
    config.max_checkpoints_to_keep = 2
    config.keep_best_checkpoints = 0
    config.keep_checkpoint_steps = (4_500,)  # 30 % of training: where SSync runs branch off.
    config.init_from = ml_collections.config_dict.placeholder(str)  # None: a fresh start.
    config.init_from_step = ml_collections.config_dict.placeholder(int)  # None: its latest checkpoint.
    config.init_from_params_only = False
    config.async_checkpointing = True
    config.num_profile_steps = 0
    config.shard_params = False
    config.steps_per_dispatch = 4
    config.eval = common.evaluation(chunk_length=8, num_true_ids=6, fg_ari_without_foreground="skip", params_checkpoint=None, protocol="config")
    return config
