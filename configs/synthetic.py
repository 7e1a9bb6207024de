r"""The embedded default: SSync on the generated MOVi-C-like dataset, sized for a 2-core CPU.

A SAVi-style model (small CNN encoder to a 16x16 grid, 11 slots, a spatial-broadcast decoder that
reconstructs each grid cell's 4x4 pixels) trained with pixel reconstruction + SlotContrast; the SSync
boundary/interior losses join after 30 % of training. The dataset (`synthetic_movi/c_64x64`:
300/50/50 videos of 24 frames, 3-10 objects, static camera) is generated on first use (1.5-3 minutes,
with progress bars).

    python main.py --config configs/synthetic.py --workdir workdirs/synthetic
    tensorboard --logdir workdirs/synthetic

Overrides: `--config.num_train_steps=2000`, `--config.data.global_batch_size=4`, ...; the
SSync-off base model: `--config configs/synthetic.py:base`.

Speed: 1.6 s per step on a quiet 2-core CPU (`python -m benchmarks.train_speed`), so the 400 steps
take about 11 minutes plus two evaluations of the 50 validation videos (~40 s each).

What it reaches (held-out test split, 50 videos, mean ± std over 3 seeds, `python -m
benchmarks.learning`, docs/RESULTS.md): video FG-ARI 1.4 ± 0.8 / mBO 3.6 ± 0.2 from the decoder
masks, 6.8 ± 1.4 / 5.5 ± 0.6 from the encoder's slot attention; the base model (`:base`) 3.3 ± 0.3 /
4.5 ± 0.1 and 19.5 ± 0.5 / 9.0 ± 0.2. At 400 steps the encoder's attention starts to separate the
larger objects while the decoder still paints mostly one slot, and SSync's interior loss pulls the
encoder into that collapse: it needs a longer schedule (the paper: 100k steps) to help.
"""

import ml_collections

from configs import common


def get_config(variant: str = "ssync") -> ml_collections.ConfigDict:
    """Args: variant: "ssync" (default) or "base" (the same model without the SSync losses)."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    num_slots = ml_collections.FieldReference(11)  # The model's, and the boxes' rows + 1.
    image_size = ml_collections.FieldReference((64, 64))  # One value for the data and the model.

    # Input pipeline (ssync_jax/data/pipeline.py).
    config.data = common.data(
        "synthetic_movi/c_64x64",  # Generated on first use.
        image_size=image_size,
        chunk_length=4,
        normalization="zero_one",
        bicubic="pil",
        eval_resolution="dataset",
        global_batch_size=8,
        eval_batch_size=4,
        num_workers=0,
        num_slots=num_slots,
        prefetch_buffer_size=2,
    )

    # Model (ssync_jax/models/factory.py): a SAVi-S-like CNN at stride 4 (a 16x16 patch grid), 11 slots,
    # SAVi's conventions (Flax initialisation, GRU on the slots, standard attention scale).
    config.model = ml_collections.ConfigDict(
        dict(
            num_slots=num_slots,
            slot_dim=64,
            image_size=image_size,
            dtype="float32",  # Computation dtype of the trainable parts.
            init_scheme="flax",  # "torch": the authors' PyTorch initialisation.
            initializer=dict(name="fixed_learned"),  # "fixed_learned" | "gaussian" | "box_conditioned"
            encoder=dict(
                backbone="savi_cnn",  # "dinov2" | "savi_cnn" | "resnet34"
                cnn_features=(32, 32, 32, 32),
                cnn_strides=(2, 2, 1, 1),
                position_embedding=True,  # Grid position embedding for CNN maps.
                backbone_dtype="float32",
                freeze_backbone=False,
            ),
            corrector=dict(num_iterations=2, first_frame_iterations=3, mlp_multiplier=4, eps=1e-8, gru_state="slots"),
            predictor=dict(num_blocks=1, num_heads=4, mlp_multiplier=4, attention_logit_scale="rsqrt_head_dim"),
            # The decoder runs once per slot and frame, so at full 64² resolution its backward pass is
            # ~90 % of a CPU step. On the encoder's 16x16 grid, reconstructing each cell's 4x4 pixels
            # instead, it is ~16x cheaper, and its masks are on the encoder grid, as SSync needs them.
            decoder=common.spatial_broadcast_decoder(
                resolution=(16, 16), features=(32, 32), upsample=(False, False), kernel_size=5, patch_size=4
            ),
        )
    )

    # Objective (ssync_jax/objectives/total_loss.py): reconstruction + SlotContrast, SSync from 30 % on.
    config.losses = common.losses(variant, reconstruction=1.0, slot_contrast=0.5, ssync=1.0, ssync_warmup=0.3)
    config.ssync = common.ssync(merge_iou_threshold=0.7)
    config.loss_group_size = ml_collections.config_dict.placeholder(int)  # None: the whole global batch.
    config.optimizer = common.adam(learning_rate=4e-4, warmup_steps=50, final_lr_fraction=0.5, grad_clip_norm=0.05)

    # Loop (ssync_jax/train.py) and evaluation (ssync_jax/evaluate.py).
    common.set_loop(config, 400, log_every=10, image_every=100, eval_every=200, checkpoint_every=100, keep_best=0)
    config.eval = common.evaluation(chunk_length=6, num_true_ids=11, fg_ari_without_foreground="skip")
    return config
