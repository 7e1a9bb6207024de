r"""SSync's regime study on a CPU: the default's data on a 16x16 patch grid, the whole recipe in this file.

Why: on the default's 8x8 grid most patches are boundary patches and objects have no interiors
(what SSync does there: see docs/RESULTS.md §1.3-1.5). Here the encoder keeps a 16x16 grid of the
same 32² MOVi-A-like frames, so a typical object spans several patches with interior ones. The
criteria this regime was held to before SSync ran in it: see docs/RESULTS.md §1.6; the paper's
Table 7 run here: see docs/RESULTS.md §1.7; SSync switched on in trained bases: see docs/RESULTS.md
§1.8. `:ssync` here is a study, not a recipe to use.

Data: `synthetic_movi/a_32x32_8frames` (the default's: 2-5 plain-coloured solids, static camera,
300/50/50 videos of 8 frames at 32²). Model: a 4-layer CNN at stride 2 (a 16x16 grid) with a
position embedding; 7 slots x 64 drawn from a learned Gaussian; slot attention (3 iterations on
the first frame, 2 after); a one-block transformer predictor; the decoder (the variant's second
part) on the 16x16 grid, reconstructing each cell's 2x2 pixels:
    "sb"  SAVi's spatial-broadcast CNN decoder (2 convolutions of 32, kernel 3), as the default;
    "mlp" the paper's decoder: one MLP (3 x 64, ReLU) per slot and patch, from the slot plus a
          learned patch position embedding (`configs/movi_c.py` decodes DINOv2 features this way).
Objective: pixel MSE + SlotContrast 0.5; ":ssync" adds SSync's boundary and interior losses (weight
1 each, τ 0.7, from 30 % of training: the paper's settings, unchanged). Training: 15,000 steps of
8 clips of 2 frames, Adam 4e-4 (200 warm-up steps, exponential decay to half), validation every
1,500 steps; the checkpoint at 30 % (step 4,500) is kept, for SSync runs that branch off it.

    python main.py --config studies/configs/synthetic16.py:base,mlp --workdir workdirs/synthetic16
    python main.py --config studies/configs/synthetic16.py:ssync,mlp --workdir workdirs/synthetic16_ssync \
        --config.init_from=workdirs/synthetic16 --config.init_from_step=4500

Variants: "base" or "ssync", then "," and the decoder, "sb" or "mlp" (default "base,mlp").
"""

import ml_collections

from configs import common

DECODERS = ("sb", "mlp")
VARIANTS = tuple(f"{losses},{decoder}" for losses in ("base", "ssync") for decoder in DECODERS)


def get_config(variant: str = "base,mlp") -> ml_collections.ConfigDict:
    """Args: variant: "base" or "ssync" (SSync from 30 % of training), "," and the decoder, "sb" or "mlp"."""
    losses_variant, _, decoder = variant.partition(",")
    decoder = decoder or "mlp"
    if decoder not in DECODERS:
        raise ValueError(f"Unknown decoder {decoder!r} in variant {variant!r}; use 'base,mlp', 'ssync,sb', ...")
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
        precomputed_features=None,  # Frames, the backbone run every step.
        keep_decoded=True,  # 400 small videos: a few MB decoded.
    )

    # Model (ssync_jax/models/factory.py): a SAVi-S-like CNN at stride 2 (a 16x16 patch grid), 7 slots,
    # SAVi's conventions (Flax initialisation, GRU on the slots, standard attention scale).
    if decoder == "mlp":
        decoder_config = common.mlp_decoder(hidden_sizes=(64, 64, 64), target="video", patch_size=2)
    else:
        decoder_config = common.spatial_broadcast_decoder(
            resolution=(16, 16), features=(32, 32), upsample=(False, False), kernel_size=3, patch_size=2, target="video"
        )
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
                cnn_features=(32, 32, 32, 32),
                cnn_strides=(2, 1, 1, 1),
                position_embedding=True,
                backbone_dtype="float32",
                freeze_backbone=False,
                token_norm="none",  # "layernorm": tokens at DINOv2's scale.
                backbone_from=ml_collections.config_dict.placeholder(str),  # Another run's trained backbone: its workdir or model dir.
                backbone_from_step=ml_collections.config_dict.placeholder(int),  # Its checkpoint (None: the latest).
            ),
            corrector=dict(num_iterations=2, first_frame_iterations=3, mlp_multiplier=4, eps=1e-8, gru_state="slots"),
            predictor=dict(num_blocks=1, num_heads=4, mlp_multiplier=4, attention_logit_scale="rsqrt_head_dim"),
            decoder=decoder_config,
        )
    )

    # Objective: reconstruction + SlotContrast; `ssync` adds SSync from 30 % on, the paper's settings.
    config.losses = ml_collections.ConfigDict()
    config.losses.reconstruction = dict(weight=1.0)  # Pixel MSE.
    config.losses.slot_contrast = dict(weight=0.5, temperature=0.1)
    if common.ssync_on(losses_variant):  # Both SSync losses, from 30 % of training on.
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
