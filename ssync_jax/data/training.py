"""The one way in for training data: a config in, this process's training batches out — frames
(`pipeline`) or a frozen backbone's pre-extracted tokens (`precomputed`, when
`config.data.precomputed_features` names a directory) — with the frames its image summaries draw.

The training loop reads batches and asks for the frames to draw; it never asks which kind it has.
"""

import contextlib
import dataclasses
from typing import Any, Iterator, Mapping

import jax
import ml_collections
import numpy as np

from ssync_jax import sharding
from ssync_jax.data import pipeline, precomputed


@dataclasses.dataclass
class TrainingData:
    """A run's training batches and the frames its image summaries draw.

    Attributes:
        batches: an infinite iterator of this process's batches (dicts of numpy arrays; see
            `pipeline` and `precomputed` for the keys), with `get_state` / `set_state` for checkpoints.
        preview: for token batches, which carry no frames, a fixed chunk of the first validation video
            (on the devices, replicated; and on the host), drawn instead; None for frame batches.
    """

    batches: Iterator[dict[str, np.ndarray]]
    preview: tuple[jax.Array, np.ndarray] | None = None

    def frames_to_draw(self, batch: Mapping[str, Any], local_batch: Mapping[str, np.ndarray]) -> tuple[Any, np.ndarray]:
        """(frames on the devices [B, T, H, W, 3], this process's [b, T, H, W, 3]) for image summaries:
        the batch's own frames, or the preview chunk when the batches are tokens."""
        if self.preview is not None:
            return self.preview
        return batch["video"], local_batch["video"]


def training_batches(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, *, images: bool = True) -> TrainingData:
    """The run's training data: frames of `config.data.train_split`, or the pre-extracted tokens of
    `config.data.precomputed_features`, shuffled with `config.seed`.

    Args:
        config: the experiment config (`data`, `model.encoder` for the tokens' checks, `seed`).
        mesh: the devices a preview chunk is replicated on.
        images: the run draws image summaries (token batches then read one validation chunk).

    Returns:
        The batches, and the preview chunk where the batches have no frames.

    Raises:
        UserError: the data are missing, or the tokens were extracted for another config.
    """
    if not config.data.get("precomputed_features"):
        return TrainingData(iter(pipeline.dataset_from_config(config.data, train=True, seed=config.seed)))
    batches = iter(precomputed.dataset_from_config(config, seed=config.seed))
    return TrainingData(batches, _preview_chunk(config, mesh) if images else None)


def _preview_chunk(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> tuple[jax.Array, np.ndarray]:
    """The first validation video's first `chunk_length` frames [1, T, H, W, 3], on the devices and on
    the host; every process reads the same video."""
    data = config.data.copy_and_resolve_references()
    data.eval_batch_size = 1
    dataset = pipeline.dataset_from_config(data, train=False, seed=config.seed, process_index=0, process_count=1)
    with contextlib.closing(iter(dataset)) as iterator:
        video = next(iterator)["video"][:, : config.data.chunk_length]  # [1, T, H, W, 3]
    return jax.device_put(video, sharding.replicated(mesh)), video
