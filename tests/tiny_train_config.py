"""The tiny training setting of the training tests (`main.py --config tests/tiny_train_config.py`
in subprocesses), and `read_events` to check what they logged.

4 training / 2 validation videos of 3 frames at 32x32 (generated on first use), model input
16x16, 2-frame chunks, batch 2, a 2-layer CNN (4x4 patch grid), 3 slots of 16, a decoder of
4x4-pixel patches on that grid, SSync active from step round(0.3 * num_train_steps), a
checkpoint every step.
"""

import glob
import os

import ml_collections
import numpy as np

from configs import synthetic

DATASET = "synthetic_movi/c_32x32_3frames_train4_validation2_test1"


def get_config() -> ml_collections.ConfigDict:
    config = synthetic.get_config("ssync")
    config.data.name = DATASET
    config.data.image_size = (16, 16)
    config.data.chunk_length = 2
    config.data.global_batch_size = 2
    config.data.eval_batch_size = 2
    config.data.prefetch_buffer_size = 1
    config.model.num_slots = 3
    config.model.slot_dim = 16
    config.model.image_size = (16, 16)
    config.model.encoder.cnn_features = (8, 8)
    config.model.encoder.cnn_strides = (2, 2)
    config.model.decoder.resolution = (4, 4)
    config.model.decoder.features = (8, 8)
    config.model.decoder.upsample = (False, False)  # On the 4x4 grid, 4x4-pixel patches, as the default.
    config.optimizer.warmup_steps = 1
    config.num_train_steps = 2
    config.log_every_steps = 1
    config.image_every_steps = 0
    config.eval_every_steps = 1000
    config.checkpoint_every_steps = 1
    config.eval.chunk_length = 2
    config.eval.num_true_ids = 11  # MOVi-C-like scenes: up to 10 objects + background.
    # Deterministic slots, so that 1 device, 8 devices and 2 processes can be compared exactly: with
    # 2 processes each contributes its own shard of videos, so the global batch holds the same videos
    # in another row order, and Gaussian slot draws (indexed by row) would pair with other videos.
    config.model.initializer.name = "fixed_learned"
    return config


def read_events(workdir: str) -> dict[str, dict[int, np.ndarray]]:
    """{tag: {step: value}} of every TensorBoard event file in `workdir`."""
    import tensorflow as tf  # Only the tests that read events pay for it.

    events: dict[str, dict[int, np.ndarray]] = {}
    for path in sorted(glob.glob(os.path.join(workdir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                events.setdefault(value.tag, {})[event.step] = tf.make_ndarray(value.tensor)
    return events
