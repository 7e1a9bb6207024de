r"""SSync as a plug-in for a SAVi-style model on MOVi-C: SAVi-S CNN encoder at 64², a spatial-broadcast
decoder reconstructing the frames, unconditional learned slots (11 of 128).

The SSync losses compare the encoder's slot attention with the decoder's alpha masks, which the
decoder gives at 64² and the objective area-averages onto the encoder's 64x64 grid.

    python main.py --config configs/savi_movi_c.py --workdir workdirs/savi_movi_c \
        --config.data.data_dir ~/tensorflow_datasets

Expected: no paper number for this combination. For reference, unconditional SAVi on MOVi-C
reaches video FG-ARI 22.2 / mBO 13.6 (SSync paper, Table 1) — the base model,
`configs/savi_movi_c.py:base`; the SSync variant is our experiment.
"""

import ml_collections

from configs import movi_c, synthetic


def get_config(variant: str = "ssync") -> ml_collections.ConfigDict:
    """Args: variant: "ssync" (default) or "base" (SAVi alone)."""
    config = synthetic.get_config(variant)
    config.data.name = "movi_c/128x128:1.0.0"
    config.data.image_size = (64, 64)
    config.data.chunk_length = 6  # SAVi's training clips.
    config.data.global_batch_size = 64
    config.data.eval_batch_size = 8
    config.data.num_workers = 8

    config.model.num_slots = 11
    config.model.slot_dim = 128
    config.model.image_size = (64, 64)
    config.model.encoder.cnn_features = (32, 32, 32, 32)  # SAVi-S: stride 1, a 64x64 grid.
    config.model.encoder.cnn_strides = (1, 1, 1, 1)
    config.model.decoder.resolution = (8, 8)  # SAVi's decoder: 3 upsamplings to 64², 64 channels.
    config.model.decoder.features = (64, 64, 64, 64)
    config.model.decoder.upsample = (True, True, True, False)

    config.optimizer.learning_rate = 2e-4
    return movi_c.long_run_loop(config, 100_000)
