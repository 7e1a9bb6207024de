r"""What SSync's selections would be for a perfect model: its rule applied to the ground truth on a config's grid.

    python -m studies.premise_floor --config studies/configs/synthetic16_features.py   # 16x16 grid
    python -m studies.premise_floor --config configs/synthetic.py                      # the default's 8x8 grid

The validation videos' ground-truth ids are brought onto the model's patch grid (each patch takes
the id covering most of it: the one-hot ids area-averaged, then argmax) and given to SSync's
pseudo-labelling as both maps, in clips of the training length with `config.ssync`'s settings, as
`ssync_jax.evaluate.objective_statistics` computes them for a model. The boundary share is then the
least any model can have on that grid and data (every boundary patch lies where objects meet), the
interior share the most: whether a grid can meet §1.6's premise (C1 interiors ≥ 25 %, C2 boundaries
≤ 50 %) at all, before a model is trained on it.
"""

from ssync_jax import cli  # First: it quiets TensorFlow before anything loads it.

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from ml_collections import config_flags

from ssync_jax import evaluate
from ssync_jax.models import build_model
from ssync_jax.objectives import resample


def ground_truth_logits(ids: np.ndarray, grid: tuple[int, int], num_ids: int) -> jax.Array:
    """[B, T, h, w, K] logits whose argmax is, per patch, the id covering most of it.

    Args:
        ids: `[B, T, H, W]` ground-truth ids.
        grid: (h, w), the patch grid.
        num_ids: K, the ids' count.
    """
    shares = resample.area_resample_to_grid(jax.nn.one_hot(ids, num_ids, dtype=jnp.float32), grid)
    return 10.0 * shares


def floor(config, max_videos: int | None = None) -> dict[str, float]:
    """Mean boundary and interior shares of the ground truth over the evaluation split's videos."""
    model = build_model(config.model)
    totals, count = {"ssync_boundary_fraction": 0.0, "ssync_interior_fraction": 0.0}, 0
    for batch in evaluate.evaluation_dataset(config):
        valid = np.asarray(batch["valid"])
        logits = ground_truth_logits(batch["segmentations"], model.patch_grid, config.eval.num_true_ids)
        statistics = evaluate.objective_statistics(
            {"enc_logits": logits, "dec_logits": logits},
            clip_length=config.data.chunk_length,
            ssync_settings=config.ssync.to_dict(),
        )
        for name in totals:
            totals[name] += float(np.sum(np.asarray(statistics[name])[valid]))
        count += int(valid.sum())
        if max_videos is not None and count >= max_videos:
            break
    return {"grid": model.patch_grid, "videos": count, **{name: value / count for name, value in totals.items()}}


def main(argv):
    del argv
    config = flags.FLAGS.config
    result = floor(config)
    grid = "x".join(map(str, result["grid"]))
    print(f"{config.data.name} {config.data.eval_split} ({result['videos']} videos), {grid} grid, clips of "
          f"{config.data.chunk_length} frames, the ground truth as both maps: boundary "
          f"{100 * result['ssync_boundary_fraction']:.1f} %, interior {100 * result['ssync_interior_fraction']:.1f} %")  # fmt: skip


if __name__ == "__main__":
    config_flags.DEFINE_config_file("config", None, "The config whose data, grid and SSync settings to use.")
    flags.mark_flag_as_required("config")
    cli.run(main)
