r"""SSync on MOVi-E, the paper's setting: the MOVi recipe of configs/movi_c.py (`dinov2_recipe`, every
value there) with ViT-B/14, 15 slots of 128, merge τ 0.65 and 300k steps, as the authors'
configs/SSync/movi_e.yaml. Mixed precision: the two bfloat16 switches of configs/movi_c.py (off).

    python main.py --config configs/movi_e.py --workdir workdirs/movi_e \
        --config.data.data_dir ~/tensorflow_datasets

Expected (paper, mean of 3 runs): video FG-ARI 84.0, video mBO 34.8. The base model
(`configs/movi_e.py:base`, SSync off = SlotContrast): 82.9 / 29.2.
"""

import ml_collections

from configs import movi_c


def get_config(variant: str = "ssync") -> ml_collections.ConfigDict:
    """Args: variant: "ssync" (default) or "base" (SSync off, the SlotContrast model)."""
    return movi_c.dinov2_recipe(
        variant,
        dataset="movi_e/128x128:1.0.0",
        dinov2="vit_b14",
        weights="facebook/dinov2-base",
        num_slots=15,
        slot_dim=128,
        merge_iou=0.65,
        steps=300_000,
        num_true_ids=24,  # Background + up to 23 objects.
    )
