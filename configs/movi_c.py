r"""SSync on MOVi-C, the paper's setting (Moon & Heo, ECCV 2026, Table 1), the whole recipe in this file.

Frozen DINOv2 ViT-S/14 at 336² (24x24 patches), 11 slots of 64, slot attention 2 iterations (3 on
the first frame), a 1-block predictor, an MLP decoder (3x1024) reconstructing block-12 features;
loss = feature MSE 1.0 + SlotContrast 0.5 (τ 0.1) + SSync boundary 1.0 + interior 1.0 from 30 % of
training on, merge τ 0.7; Adam 8e-4, 2,500 warm-up steps, exponential decay to 0.5x at step 100k,
global-norm clip 0.05, global batch 128 of 4-frame chunks, horizontal flips.

The authors' code, where it is not the usual reading (docs/RESULTS.md §0 measures the equivalence):
predictor attention logits x √d_head (`model.predictor.attention_logit_scale="sqrt_head_dim"`),
GRU continuing from the LayerNormed slots (`model.corrector.gru_state="normalized_slots"`), PyTorch
initialisation (`model.init_scheme="torch"`), every loss computed per 64 clips as on each of their
2 GPUs (`loss_group_size=64`), evaluation at the 336² input with labels upsampled nearest
(`data.eval_resolution="model_input"`), frames without objects scoring FG-ARI 1
(`eval.fg_ari_without_foreground="one"`), PyTorch's bicubic resize (`data.bicubic="torch"`). They
train in fp16 mixed precision. Ours is bfloat16, two switches, both off here (float32, so that the
recipe computes what their float32 code computes, docs/RESULTS.md §0): `model.dtype="bfloat16"`
computes the trainable parts in bfloat16 while parameters, optimizer state, softmaxes, losses and
SSync's pseudo-labels stay float32; `model.encoder.backbone_dtype="bfloat16"` runs the frozen ViT in
bfloat16. Each loss term stays within 1 % of float32 (tests/test_mixed_precision.py). bfloat16 pays
only on hardware that runs it natively: GPUs, TPUs, and CPUs with AVX512-BF16 (docs/RESULTS.md §2
has the step times beside the authors', `python -m benchmarks.vs_authors`); on a CPU without it,
keep float32.

Data: convert Kubric's MOVi-C once (see ssync_jax/data/movi.py), then

    python main.py --config configs/movi_c.py --workdir workdirs/movi_c \
        --config.data.data_dir ~/tensorflow_datasets

Expected (paper, mean of 3 runs, 250 validation videos of 24 frames): video FG-ARI 79.4, video mBO
39.5. The base model (`configs/movi_c.py:base`, SSync off = SlotContrast): 69.3 / 32.7.
"""

import ml_collections

from configs import common


def get_config(variant: str = "ssync") -> ml_collections.ConfigDict:
    """Args: variant: "ssync" (default) or "base" (SSync off, the SlotContrast model)."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    num_slots = ml_collections.FieldReference(11)  # The model's, and the boxes' rows + 1.
    image_size = ml_collections.FieldReference((336, 336))  # One value for the data and the model.

    # Input pipeline (ssync_jax/data/pipeline.py): 4-frame chunks, global batch 128, flips.
    config.data = common.data(
        "movi_c/128x128:1.0.0",
        image_size=image_size,
        chunk_length=4,
        normalization="imagenet",
        bicubic="torch",
        eval_resolution="model_input",
        global_batch_size=128,
        eval_batch_size=8,
        num_workers=8,
        prefetch_buffer_size=4,
        num_boxes=num_slots - 1,  # One row per object slot (the first slot is the background's).
        flip_prob=0.5,
        fields=("video", "segmentations"),
        train_split="train",
        eval_split="validation",
        data_dir=None,  # TFDS's default directory.
        precomputed_features=None,  # Frames, the backbone run every step.
        keep_decoded=False,  # ~10k videos: too many to keep decoded.
    )

    # Model (ssync_jax/models/factory.py): frozen DINOv2 ViT-S/14 (24x24 patches), 11 slots of 64.
    config.model = ml_collections.ConfigDict(
        dict(
            num_slots=num_slots,
            slot_dim=64,
            image_size=image_size,
            dtype="float32",
            init_scheme="torch",
            initializer=dict(name="fixed_learned"),
            encoder=dict(
                backbone="dinov2",
                dinov2_variant="vit_s14",
                weights="facebook/dinov2-small",
                backbone_dtype="float32",
                freeze_backbone=True,
                token_norm="none",  # DINOv2's tokens come out of its own final LayerNorm.
                backbone_from=ml_collections.config_dict.placeholder(str),  # Another run's trained backbone: its workdir or model dir.
                backbone_from_step=ml_collections.config_dict.placeholder(int),  # Its checkpoint (None: the latest).
                position_embedding=False,
                cnn_features=(),
                cnn_strides=(),
            ),
            corrector=dict(
                num_iterations=2, first_frame_iterations=3, mlp_multiplier=4, eps=1e-8, gru_state="normalized_slots"
            ),
            predictor=dict(num_blocks=1, num_heads=4, mlp_multiplier=4, attention_logit_scale="sqrt_head_dim"),
            decoder=common.mlp_decoder(hidden_sizes=(1024, 1024, 1024), target="features", patch_size=1),
        )
    )

    # Objective (ssync_jax/objectives/total_loss.py): feature MSE + SlotContrast; `:ssync` adds SSync from 30 % on.
    config.losses = ml_collections.ConfigDict()
    config.losses.reconstruction = dict(weight=1.0)  # Feature MSE.
    config.losses.slot_contrast = dict(weight=0.5, temperature=0.1)
    if common.ssync_on(variant):  # Both SSync losses, from 30 % of training on.
        config.losses.ssync_boundary = dict(weight=1.0, warmup_fraction=0.3)
        config.losses.ssync_interior = dict(weight=1.0, warmup_fraction=0.3)
    config.ssync = common.ssync(merge_iou_threshold=0.7, min_diff_boundary=1, min_same_boundary=1, max_diff_interior=1)
    config.loss_group_size = 64  # The authors' per-GPU batch: 2 GPUs x 64 clips, losses per GPU.
    config.optimizer = common.adam(learning_rate=8e-4, warmup_steps=2_500, final_lr_fraction=0.5, grad_clip_norm=0.05, b1=0.9, b2=0.999)

    # Loop (ssync_jax/train.py; configs/synthetic.py says what each key does) and evaluation
    # (ssync_jax/evaluate.py): whole 24-frame videos, background + up to 10 objects.
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
    config.eval = common.evaluation(chunk_length=24, num_true_ids=11, fg_ari_without_foreground="one", params_checkpoint=None, protocol="config")
    return config
