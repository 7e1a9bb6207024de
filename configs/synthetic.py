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

from ssync_jax.models import config as model_config


def get_config(variant: str = "ssync") -> ml_collections.ConfigDict:
    """Args: variant: "ssync" (default) or "base" (the same model without the SSync losses)."""
    config = ml_collections.ConfigDict()
    config.seed = 0

    # Input pipeline (ssync_jax/data/pipeline.py).
    config.data = ml_collections.ConfigDict()
    config.data.name = "synthetic_movi/c_64x64"  # TFDS name[/config][:version].
    config.data.data_dir = ml_collections.config_dict.placeholder(str)  # None: TFDS default dir.
    config.data.train_split = "train"
    config.data.eval_split = "validation"  # Whole videos, one pass.
    config.data.image_size = (64, 64)  # Model input (height, width).
    config.data.chunk_length = 4  # Training frames per example (aligned windows of the video).
    config.data.normalization = "zero_one"  # "imagenet" | "zero_one" | "minus_one_one".
    config.data.flip_prob = 0.5
    config.data.bicubic = "pil"  # Video resize kernel: "pil" (a = -0.5, antialiased) or "torch" (the authors').
    config.data.eval_resolution = "dataset"  # Score at the labels' resolution, or "model_input" (the authors').
    # Per-pixel fields carried: "video" plus any of "segmentations", "depth", "forward_flow",
    # "backward_flow" (the last three decoded to floats, e.g. for SAVi-style targets).
    config.data.fields = ("video", "segmentations")
    config.data.global_batch_size = 8  # Over all hosts; must divide by the JAX process count.
    config.data.eval_batch_size = 4  # Likewise; the last partial batch is padded (batch["valid"]).
    config.data.num_workers = 0  # grain worker processes; 0 = in the main process.
    config.data.prefetch_buffer_size = 2  # Batches read ahead (per worker), one thread each.
    # Pre-extracted frozen-backbone tokens to train from instead of frames (written by
    # `python -m ssync_jax.tools.extract_features`); None runs the backbone in every step.
    # Evaluation always reads frames.
    config.data.precomputed_features = ml_collections.config_dict.placeholder(str)

    # Model (ssync_jax/models/config.py): SAVi-S-like CNN at stride 4 (a 16x16 patch grid), 11 slots.
    config.model = model_config.dinov2_feature_model(num_slots=11, slot_dim=64, image_size=config.data.image_size)
    config.model.init_scheme = "flax"  # SAVi's conventions: Flax initialisation, GRU on the raw slots,
    config.model.corrector.gru_state = "slots"  # standard attention scale in the predictor.
    config.model.predictor.attention_logit_scale = "rsqrt_head_dim"
    config.model.encoder.backbone = "savi_cnn"
    config.model.encoder.freeze_backbone = False
    config.model.encoder.position_embedding = True
    config.model.encoder.cnn_features = (32, 32, 32, 32)
    config.model.encoder.cnn_strides = (2, 2, 1, 1)
    config.model.decoder.name = "spatial_broadcast"
    # The decoder runs once per slot and frame, so at full 64² resolution its backward pass is ~90 %
    # of a CPU step. On the encoder's 16x16 grid, reconstructing each cell's 4x4 pixels instead, it is
    # ~16x cheaper, and its masks are on the encoder grid, as SSync needs them.
    config.model.decoder.resolution = (16, 16)
    config.model.decoder.features = (32, 32)
    config.model.decoder.upsample = (False, False)
    config.model.decoder.patch_size = 4

    # Objective (ssync_jax/objectives/total_loss.py): reconstruction, then SSync from 30 % on.
    config.losses = ml_collections.ConfigDict(
        {"reconstruction": {"weight": 1.0}, "slot_contrast": {"weight": 0.5, "temperature": 0.1}}
    )
    if variant == "ssync":
        config.losses.ssync_boundary = {"weight": 1.0, "warmup_fraction": 0.3}
        config.losses.ssync_interior = {"weight": 1.0, "warmup_fraction": 0.3}
    elif variant != "base":
        raise ValueError(f"Unknown variant {variant!r} of configs/synthetic.py; use 'ssync' or 'base'.")
    config.ssync = ml_collections.ConfigDict(
        {"merge_iou_threshold": 0.7, "min_diff_boundary": 1, "min_same_boundary": 1, "max_diff_interior": 1}
    )
    config.ssync.grid_shape = ml_collections.config_dict.placeholder(tuple)  # None: square grid.
    # Clips per loss group (SlotContrast negatives, SSync pooling); None: the whole global batch.
    config.loss_group_size = ml_collections.config_dict.placeholder(int)

    # Optimizer: Adam, linear warm-up, exponential decay to final_lr_fraction at the last step.
    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.learning_rate = 4e-4
    config.optimizer.warmup_steps = 50
    config.optimizer.final_lr_fraction = 0.5
    config.optimizer.grad_clip_norm = 0.05
    config.optimizer.b1 = 0.9
    config.optimizer.b2 = 0.999

    # Loop (ssync_jax/train.py).
    config.num_train_steps = 400  # ~1.6 s/step on 2 quiet CPU cores: about 11 minutes.
    config.stop_after_step = ml_collections.config_dict.placeholder(int)  # Leave early (resumable).
    config.log_every_steps = 10
    config.image_every_steps = 100  # 0: no images.
    config.eval_every_steps = 200
    config.checkpoint_every_steps = 100
    config.max_checkpoints_to_keep = 2
    config.keep_best_checkpoints = 0  # >0: also keep this many with the best eval video_fg_ari.
    config.async_checkpointing = True
    config.num_profile_steps = 0  # >0: a profiler trace of this many steps into the workdir.
    config.shard_params = False  # Split large params over the data axis (FSDP-style).

    # Evaluation (ssync_jax/evaluate.py): whole validation videos in chunks, state carried.
    config.eval = ml_collections.ConfigDict()
    config.eval.chunk_length = 6
    config.eval.num_true_ids = 11  # Largest ground-truth id + 1 (background 0, up to 10 objects).
    config.eval.fg_ari_without_foreground = "skip"  # Frames without objects: "skip", or "one" (the authors').
    # An orbax params checkpoint to evaluate instead of the workdir's (e.g. the authors' weights
    # converted by `python -m ssync_jax.tools.import_torch_checkpoint`); --mode eval only.
    config.eval.params_checkpoint = ml_collections.config_dict.placeholder(str)
    return config
