r"""The embedded default: SSync on the generated MOVi-C-like dataset, sized for a 2-core CPU.

Prepare the data (first use does it automatically; a few minutes on 2 cores):

    python main.py --config configs/synthetic.py --workdir workdirs/synthetic

The training body arrives with the training issue; until then main.py prepares and summarises the
dataset this config names.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
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
    # Per-pixel fields carried: "video" plus any of "segmentations", "depth", "forward_flow",
    # "backward_flow" (the last three decoded to floats, e.g. for SAVi-style targets).
    config.data.fields = ("video", "segmentations")
    config.data.global_batch_size = 8  # Over all hosts; must divide by the JAX process count.
    config.data.eval_batch_size = 4  # Likewise; the last partial batch is padded (batch["valid"]).
    config.data.num_workers = 0  # grain worker processes; 0 = in the main process.
    config.data.prefetch_buffer_size = 2  # Batches read ahead (per worker), one thread each.
    return config
