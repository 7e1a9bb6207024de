r"""The embedded default: a SAVi-style model that finds objects in generated videos on a 2-core CPU.

Data: `synthetic_movi/a_32x32_8frames`, MOVi-A-like (2-5 plain-coloured solids on a plain floor
under a plain sky, static camera; 300/50/50 videos of 8 frames at 32²), generated on first use.
Model: a 4-layer CNN to an 8x8 grid with a position embedding; 7 slots x 64 drawn from a learned
Gaussian; slot attention (3 iterations on the first frame, 2 after); a one-block transformer
predictor; a spatial-broadcast decoder on the 8x8 grid that reconstructs each cell's 4x4 pixels.
Objective: pixel MSE + SlotContrast (weight 0.5). Training: 16,000 steps of 8 clips of 2 frames,
Adam 6e-4 (200 warm-up steps, exponential decay to half), validation every 2,000; 4 optimizer steps
per dispatch (one compiled program runs four, so the loop's per-dispatch work is paid once per four
steps; the same result as single steps up to float32 rounding).

    python main.py --config configs/synthetic.py --workdir workdirs/synthetic
    python main.py --config configs/synthetic.py --workdir workdirs/synthetic --mode eval \
        --config.data.eval_split=test

Its time, speed and results, and the candidates tried on the way, are in docs/RESULTS.md §1.1-1.2;
the model the first command trains ships with the package (ssync_jax/pretrained/default, what
`inference.load()` and the tools use when given no workdir).

Variants: `:base` (the default) is the model above. `:ssync` adds SSync's boundary and interior
losses (weight 1 each) from 30 % of training, as the paper does; what they do on this model, and
why the default leaves them off: see docs/RESULTS.md §1.3-1.5. The previous default
(`synthetic_movi/c_64x64`, checker-textured MOVi-C-like scenes at 64², 400 steps): see
docs/RESULTS.md §1.2.
"""


import ml_collections

from configs import common


def get_config(variant: str = "base") -> ml_collections.ConfigDict:
    """Args: variant: "base" (default: SSync off, see above) or "ssync" (the SSync losses from 30 % of training)."""
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

    # Model (ssync_jax/models/factory.py): a SAVi-S-like CNN at stride 4 (an 8x8 patch grid), 7 slots,
    # SAVi's conventions (Flax initialisation, GRU on the slots, standard attention scale).
    config.model = ml_collections.ConfigDict(
        dict(
            num_slots=num_slots,
            slot_dim=64,
            image_size=image_size,
            dtype="float32",  # Computation dtype of the trainable parts.
            init_scheme="flax",  # "torch": the authors' PyTorch initialisation.
            initializer=dict(name="gaussian"),  # "fixed_learned" | "gaussian" | "box_conditioned"
            encoder=dict(
                backbone="savi_cnn",  # "dinov2" | "savi_cnn" | "resnet34"
                cnn_features=(32, 32, 32, 32),
                cnn_strides=(2, 2, 1, 1),
                position_embedding=True,  # Grid position embedding for CNN maps.
                backbone_dtype="float32",
                freeze_backbone=False,
                token_norm="none",  # "layernorm": tokens at DINOv2's scale.
                backbone_from=ml_collections.config_dict.placeholder(str),  # Another run's trained backbone: its workdir or model dir.
                backbone_from_step=ml_collections.config_dict.placeholder(int),  # Its checkpoint (None: the latest).
            ),
            corrector=dict(num_iterations=2, first_frame_iterations=3, mlp_multiplier=4, eps=1e-8, gru_state="slots"),
            predictor=dict(num_blocks=1, num_heads=4, mlp_multiplier=4, attention_logit_scale="rsqrt_head_dim"),
            # On the encoder's grid, reconstructing each cell's 4x4 pixels: ~16x cheaper than decoding at
            # 32², and its masks are on the grid SSync compares with the encoder's.
            decoder=common.spatial_broadcast_decoder(
                resolution=(8, 8), features=(32, 32), upsample=(False, False), kernel_size=3, patch_size=4, target="video"
            ),
        )
    )

    # Objective (ssync_jax/objectives/total_loss.py): reconstruction + SlotContrast; `:ssync` adds SSync from 30 % on.
    config.losses = ml_collections.ConfigDict()
    config.losses.reconstruction = dict(weight=1.0)  # Pixel MSE.
    config.losses.slot_contrast = dict(weight=0.5, temperature=0.1)
    if common.ssync_on(variant):  # Both SSync losses, from 30 % of training on.
        config.losses.ssync_boundary = dict(weight=1.0, warmup_fraction=0.3)
        config.losses.ssync_interior = dict(weight=1.0, warmup_fraction=0.3)
    config.ssync = common.ssync(merge_iou_threshold=0.7, min_diff_boundary=1, min_same_boundary=1, max_diff_interior=1)
    config.loss_group_size = ml_collections.config_dict.placeholder(int)  # None: the whole global batch.
    config.optimizer = common.adam(learning_rate=6e-4, warmup_steps=200, final_lr_fraction=0.5, grad_clip_norm=0.05, b1=0.9, b2=0.999)

    # Loop (ssync_jax/train.py) and evaluation (ssync_jax/evaluate.py): whole 8-frame videos, up to 5
    # objects + background.
    config.num_train_steps = 16_000
    config.stop_after_step = ml_collections.config_dict.placeholder(int)  # Leave after this step, resumable; None: run to the end.
    config.log_every_steps = 100  # Scalar summaries.
    config.image_every_steps = 2000  # Image summaries; 0: none.
    config.eval_every_steps = 2000  # Evaluations, and one at the end.
    config.checkpoint_every_steps = 2000
    config.max_checkpoints_to_keep = 2  # The latest ones that stay.
    config.keep_best_checkpoints = 0  # Also keep this many with the best validation video FG-ARI; 0: off.
    config.keep_checkpoint_steps = ()  # Also saved at these steps and never deleted (runs branch off them).
    # Start from another run's checkpoint instead of a random initialisation (only when this workdir
    # has none of its own): a workdir continues from its train state (params, optimizer state, step,
    # RNG) and, when its data settings and seed equal this run's, its data position; a params
    # checkpoint (e.g. imported weights) gives the params alone, from step 0. None: a fresh start.
    config.init_from = ml_collections.config_dict.placeholder(str)
    config.init_from_step = ml_collections.config_dict.placeholder(int)  # Which checkpoint of it; None: its latest.
    config.init_from_params_only = False  # True: a workdir's params alone (fresh optimizer, step 0): fine-tuning.
    config.async_checkpointing = True  # Checkpoints written in a background thread.
    config.num_profile_steps = 0  # >0: a profiler trace of this many steps into the workdir.
    config.shard_params = False  # True: large params split over the data axis (FSDP-style) instead of replicated.
    # Training steps per call into the compiled program (that many copies of the step, over that many
    # batches): small models spend less time in the host loop; the results are those of single steps.
    # Logging, evaluation and checkpoints still happen at their steps.
    config.steps_per_dispatch = 4
    config.eval = common.evaluation(chunk_length=8, num_true_ids=6, fg_ari_without_foreground="skip", params_checkpoint=None, protocol="config")
    return config
