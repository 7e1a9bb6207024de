r"""SSync on MOVi-C, the paper's setting (Moon & Heo, ECCV 2026, Table 1).

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
(`eval.fg_ari_without_foreground="one"`), PyTorch's bicubic resize (`data.bicubic="torch"`).

Data: convert Kubric's MOVi-C once (see ssync_jax/data/movi.py), then

    python main.py --config configs/movi_c.py --workdir workdirs/movi_c \
        --config.data.data_dir ~/tensorflow_datasets

Expected (paper, mean of 3 runs, 250 validation videos of 24 frames): video FG-ARI 79.4, video mBO
39.5. The base model (`configs/movi_c.py:base`, SSync off = SlotContrast): 69.3 / 32.7.
"""

import ml_collections

from configs import synthetic
from ssync_jax.models import config as model_config


def paper_config(
    variant: str, dataset: str, dinov2: str, weights: str, num_slots: int, slot_dim: int, merge_iou: float, steps: int
) -> ml_collections.ConfigDict:
    """The paper's MOVi recipe (shared by movi_c.py and movi_e.py) on top of the default's loop settings.

    Args:
        variant: "ssync" or "base" (SSync losses off: the SlotContrast model).
        dataset: TFDS name of the converted MOVi dataset.
        dinov2: "vit_s14" or "vit_b14".
        weights: DINOv2 weights (Hugging Face hub name or local directory).
        num_slots: slots per frame.
        slot_dim: slot width.
        merge_iou: SSync's merge IoU threshold τ.
        steps: training steps.

    Returns:
        The config.
    """
    config = synthetic.get_config(variant)
    config.data.name = dataset
    config.data.image_size = (336, 336)
    config.data.normalization = "imagenet"
    config.data.global_batch_size = 128
    config.data.eval_batch_size = 8
    config.data.num_workers = 8
    config.data.prefetch_buffer_size = 4
    config.data.bicubic = "torch"
    config.data.eval_resolution = "model_input"
    config.eval.fg_ari_without_foreground = "one"

    config.model = model_config.dinov2_feature_model(dinov2, num_slots, slot_dim, (336, 336), weights)

    losses = {"reconstruction": {"weight": 1.0}, "slot_contrast": {"weight": 0.5, "temperature": 0.1}}
    if variant == "ssync":
        losses["ssync_boundary"] = {"weight": 1.0, "warmup_fraction": 0.3}
        losses["ssync_interior"] = {"weight": 1.0, "warmup_fraction": 0.3}
    config.losses = ml_collections.ConfigDict(losses)
    config.ssync.merge_iou_threshold = merge_iou
    config.loss_group_size = 64  # The authors' per-GPU batch: 2 GPUs x 64 clips, losses per GPU.

    config.optimizer.learning_rate = 8e-4
    return long_run_loop(config, steps)


def long_run_loop(config: ml_collections.ConfigDict, steps: int) -> ml_collections.ConfigDict:
    """Loop settings of a full-scale run: 2,500 warm-up steps, sparse logging, whole-video eval."""
    config.optimizer.warmup_steps = 2_500
    config.num_train_steps = steps
    config.log_every_steps = 100
    config.image_every_steps = 2_000
    config.eval_every_steps = 10_000
    config.checkpoint_every_steps = 2_000
    config.keep_best_checkpoints = 1
    config.eval.chunk_length = 24
    return config


def get_config(variant: str = "ssync") -> ml_collections.ConfigDict:
    """Args: variant: "ssync" (default) or "base" (SSync off, the SlotContrast model)."""
    config = paper_config(variant, "movi_c/128x128:1.0.0", "vit_s14", "facebook/dinov2-small", 11, 64, 0.7, 100_000)
    config.eval.num_true_ids = 11  # Background + up to 10 objects.
    return config
