"""The grain input pipeline: a dataset name and split in, batches of numpy arrays out.

Any random-access source works (`len(source)`, `source[i]` -> a decoded MOVi-format example dict
as in `ssync_jax/data/synthetic`: uint8 "video" [S, h, w, 3], uint8 "segmentations" [S, h, w, 1],
uint16 "depth"/"forward_flow"/"backward_flow" with their ranges under "metadata"), e.g.
`movi.data_source(...)` or a plain list of such dicts.

Training: each JAX process reads the disjoint shard `[process_index::process_count]`, shuffles it
(a new order each epoch), repeats forever, takes one random aligned `chunk_length`-frame window
per video, resizes to the model input, flips horizontally with `flip_prob`, normalises, and
batches. Evaluation: one finite pass over whole videos, segmentations at the model input or at
their own resolution (`eval_resolution`),
the shard padded to whole batches that every process shares, padding marked by `valid`.
Video is resized bicubically and clamped (`transforms.resize_bicubic`); segmentations, depth and
flow by nearest neighbour, so ids and depths are never blended across object edges.

Batches are dicts of numpy arrays (B = global batch / process count; T = chunk length in
training, all frames in evaluation; H, W = `image_size`; h, w = the dataset's resolution):
    video          float32 [B, T, H, W, 3]   normalised RGB
    segmentations  int32   [B, T, H, W]      0 = background, k = instance k-1 (no trailing 1;
                                             [B, T, h, w] in evaluation at "dataset" resolution)
    depth          float32 [B, T, H, W, 1]   distance along the camera ray
    forward_flow   float32 [B, T, H, W, 2]   (d_row, d_col) in output pixels (same for
    backward_flow                            backward_flow)
    boxes          float32 [B, K, 4]         first-frame object boxes (y0, x0, y1, x1) in [0, 1],
                                             row k-1 object k, zeros if absent (`num_boxes` = K)
    valid          bool    [B]               False only for evaluation padding
    video_index    int32   [B]               index into the source (-1 for padding)
Only the fields named in `fields` are carried ("video" is always required).

Training can read a frozen backbone's tokens, extracted once, instead of frames:
`ssync_jax.data.precomputed`, which draws its chunks and batches as this module does
(`ssync_jax.data.sampling`); `ssync_jax.data.training` chooses between the two for a run.

Batching happens before the (optional) worker processes, so batch k is the same for any number
of workers, and `iter(ds).get_state()` / `.set_state()` resume on exactly the next batch (the
state records per-worker positions: restore it into a pipeline with the same `num_workers`).
"""

from typing import Any, Sequence

import grain
import ml_collections
import numpy as np

from ssync_jax import errors
from ssync_jax.data import sampling, transforms

FIELDS = ("video", "segmentations", "depth", "forward_flow", "backward_flow", "boxes")
# Where evaluation compares masks: "model_input" upsamples the labels (nearest) to the model input,
# as the authors do; "dataset" keeps the labels' own resolution, as SAVi does.
EVAL_RESOLUTIONS = ("model_input", "dataset")
_FLOWS = ("forward_flow", "backward_flow")
_QUANTIZED = ("depth", *_FLOWS)  # uint16 in the source, decoded with metadata/{name}_range.

Example = dict[str, Any]
# Anything with __len__ and __getitem__ -> Example; picklable when worker processes are used.
Source = grain.sources.RandomAccessDataSource[Example]


class _Options:
    """Validated per-example settings shared by the train and eval transforms."""

    def __init__(
        self,
        image_size: Sequence[int],
        normalization: str,
        fields: Sequence[str],
        bicubic: str = "pil",
        eval_resolution: str = "dataset",
        num_boxes: int = 0,
    ):
        if len(image_size) != 2 or min(image_size) < 1:
            raise errors.ConfigError(f"image_size={tuple(image_size)} must be a positive (height, width).")
        if normalization not in transforms.NORMALIZATIONS:
            raise errors.ConfigError(
                f"Unknown normalization {normalization!r}; set config.data.normalization to one of "
                f"{transforms.NORMALIZATIONS}."
            )
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown or "video" not in fields:
            raise errors.ConfigError(
                f"config.data.fields={tuple(fields)} must include 'video' and name only {FIELDS}."
            )
        if bicubic not in transforms.BICUBIC_KERNELS:
            raise errors.ConfigError(f"config.data.bicubic={bicubic!r} must be one of {transforms.BICUBIC_KERNELS}.")
        if eval_resolution not in EVAL_RESOLUTIONS:
            raise errors.ConfigError(f"config.data.eval_resolution={eval_resolution!r} must be one of {EVAL_RESOLUTIONS}.")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.normalization = normalization
        self.fields = tuple(fields)
        if "boxes" in fields and num_boxes < 1:
            raise errors.ConfigError(f"config.data.fields has 'boxes', which needs config.data.num_boxes >= 1, got {num_boxes}.")
        self.bicubic = bicubic
        self.eval_resolution = eval_resolution
        self.num_boxes = num_boxes


def _prepare(
    example: Example,
    index: int,
    options: _Options,
    frames: slice,
    flip: bool,
    resize_segmentations: bool,
) -> Example:
    """Selects, decodes, resizes, flips and normalises the carried fields of one video.

    Args:
        example: a decoded source example.
        index: its index in the source.
        options: the pipeline settings.
        frames: the frames to keep (a chunk in training, all in evaluation).
        flip: whether to mirror every per-pixel field horizontally.
        resize_segmentations: False keeps segmentations at label resolution.

    Returns:
        The example as batched (see the module docstring), without the batch axis.
    """
    size = options.image_size
    mirror = transforms.flip_horizontal if flip else (lambda x: x)
    video = transforms.resize_bicubic(example["video"][frames], size, options.bicubic)  # [T, H, W, 3]
    out = {
        # Normalising is per pixel, so it commutes with the flip; mirroring last keeps it a view
        # (copied once, by batching) and the normalisation on contiguous memory.
        "video": mirror(transforms.normalize(video, options.normalization)),
        "valid": np.bool_(True),
        "video_index": np.int32(index),
    }
    if "segmentations" in options.fields or "boxes" in options.fields:
        segmentations = example["segmentations"][frames, :, :, 0]  # [T, h, w]
        if resize_segmentations:
            segmentations = transforms.resize_nearest(segmentations, size)  # [T, H, W]
        segmentations = mirror(segmentations).astype(np.int32)
        if "segmentations" in options.fields:
            out["segmentations"] = segmentations
        if "boxes" in options.fields:  # Of the (mirrored) first frame, as the model sees it.
            out["boxes"] = transforms.first_frame_boxes(segmentations, options.num_boxes)  # [K, 4]
    if "depth" in options.fields:
        depth = transforms.decode_quantized(
            example["depth"][frames], example["metadata"]["depth_range"]
        )  # [T, h, w, 1]
        out["depth"] = mirror(transforms.resize_nearest(depth, size))
    for name in _FLOWS:
        if name in options.fields:
            flow = transforms.decode_quantized(
                example[name][frames], example["metadata"][f"{name}_range"]
            )  # [T, h, w, 2]
            flow = transforms.resize_flow(flow, size)  # [T, H, W, 2]
            out[name] = transforms.flip_flow_horizontal(flow) if flip else flow
    return out


class _TrainExample(grain.transforms.RandomMap):
    """Source index -> one random aligned chunk, randomly mirrored (`rng`: per element)."""

    def __init__(self, source: Source, options: _Options, chunk_length: int, flip_prob: float):
        self._source = source
        self._options = options
        self._chunk_length = chunk_length
        self._flip_prob = flip_prob

    def random_map(self, element: int, rng: np.random.Generator) -> Example:
        example = self._source[element]
        frames, flip = sampling.random_chunk_and_flip(
            example["video"].shape[0], self._chunk_length, self._flip_prob, rng
        )
        return _prepare(
            example, element, self._options, frames, flip=flip, resize_segmentations=True
        )


class _EvalExample(grain.transforms.Map):
    """Position in this process's padded shard -> a whole video, or zeroed padding past the end."""

    def __init__(self, source: Source, shard: range, options: _Options):
        self._source = source
        self._shard = shard
        self._options = options

    def map(self, element: int) -> Example:
        resize = self._options.eval_resolution == "model_input"
        if element < len(self._shard):
            index = self._shard[element]
            example = self._source[index]
            return _prepare(example, index, self._options, slice(None), flip=False, resize_segmentations=resize)
        # Padding copies the shapes of a real video so that batches stack.
        real = _prepare(self._source[0], 0, self._options, slice(None), flip=False, resize_segmentations=resize)
        padding = {name: np.zeros_like(value) for name, value in real.items()}
        padding["video_index"] = np.int32(-1)
        return padding


def train_dataset(
    source: Source,
    *,
    image_size: Sequence[int],
    chunk_length: int,
    global_batch_size: int,
    seed: int,
    normalization: str = "imagenet",
    flip_prob: float = 0.5,
    fields: Sequence[str] = ("video", "segmentations"),
    bicubic: str = "pil",
    num_boxes: int = 0,
    num_workers: int = 0,
    prefetch_buffer_size: int = 2,
    process_index: int | None = None,
    process_count: int | None = None,
) -> grain.IterDataset:
    """Infinite, shuffled, augmented training batches of this process's shard.

    Args:
        source: random-access source of decoded examples.
        image_size: model input (H, W).
        chunk_length: frames per training chunk.
        global_batch_size: batch over all processes; each process yields 1/process_count of it.
        seed: fixes the shuffle order, chunks and flips of every epoch.
        normalization: one of `transforms.NORMALIZATIONS`.
        flip_prob: probability of a horizontal flip per example.
        fields: per-pixel fields to carry, from FIELDS.
        bicubic: the video resize kernel, "pil" or "torch" (`transforms.resize_bicubic`).
        num_boxes: rows of "boxes" (with "boxes" in `fields`).
        num_workers: grain worker processes (0: main process).
        prefetch_buffer_size: batches read ahead (per worker).
        process_index: this process (default `jax.process_index()`).
        process_count: all processes (default `jax.process_count()`).

    Returns:
        A grain IterDataset of batches; its iterators support get_state/set_state.
    """
    options = _Options(image_size, normalization, fields, bicubic, num_boxes=num_boxes)
    if not 0.0 <= flip_prob <= 1.0:
        raise errors.ConfigError(f"flip_prob={flip_prob} must be in [0, 1].")
    return sampling.shuffled_batches(
        len(source),
        _TrainExample(source, options, chunk_length, flip_prob),
        global_batch_size=global_batch_size,
        seed=seed,
        num_workers=num_workers,
        prefetch_buffer_size=prefetch_buffer_size,
        process_index=process_index,
        process_count=process_count,
    )


def eval_dataset(
    source: Source,
    *,
    image_size: Sequence[int],
    global_batch_size: int,
    normalization: str = "imagenet",
    fields: Sequence[str] = ("video", "segmentations"),
    bicubic: str = "pil",
    eval_resolution: str = "dataset",
    num_boxes: int = 0,
    num_workers: int = 0,
    prefetch_buffer_size: int = 2,
    process_index: int | None = None,
    process_count: int | None = None,
) -> grain.IterDataset:
    """One pass over this process's shard of whole videos, padded to whole batches.

    Every process yields ceil(ceil(N / process_count) / B) batches so that collective evaluation
    steps stay in lockstep; padding rows have `valid` False and zeros elsewhere.

    Args:
        source: random-access source of decoded examples.
        image_size: model input (H, W) for video (and depth/flow).
        global_batch_size: batch over all processes.
        normalization: one of `transforms.NORMALIZATIONS`.
        fields: per-pixel fields to carry, from FIELDS.
        bicubic: the video resize kernel, "pil" or "torch" (`transforms.resize_bicubic`).
        eval_resolution: one of EVAL_RESOLUTIONS: segmentations at the model input or their own size.
        num_boxes: rows of "boxes" (with "boxes" in `fields`).
        num_workers: grain worker processes (0: main process).
        prefetch_buffer_size: batches read ahead (per worker).
        process_index: this process (default `jax.process_index()`).
        process_count: all processes (default `jax.process_count()`).

    Returns:
        A finite grain IterDataset of batches.
    """
    options = _Options(image_size, normalization, fields, bicubic, eval_resolution, num_boxes)
    process_index, process_count, batch_size = sampling.process_shard(
        global_batch_size, process_index, process_count
    )
    if len(source) == 0:
        raise errors.ConfigError("The evaluation source is empty; check config.data.eval_split.")
    shard = range(process_index, len(source), process_count)
    longest_shard = -(-len(source) // process_count)
    num_batches = -(-longest_shard // batch_size)
    dataset = (
        grain.MapDataset.range(num_batches * batch_size)
        .map(_EvalExample(source, shard, options))
        .batch(batch_size)
    )
    return sampling.with_prefetch(dataset, num_workers, prefetch_buffer_size)


class KeptDecoded(grain.sources.RandomAccessDataSource):
    """A source whose examples are kept, decoded, after their first read (`config.data.keep_decoded`).

    Decoding a video (its PNG frames and TFDS's feature tree) costs more than everything else the
    pipeline does to a small one, and a small dataset fits in memory many times over: from the
    second epoch on, examples come from memory. Each reading process keeps its own copy.
    """

    def __init__(self, source: Source):
        self._source = source
        self._examples: list[Example | None] = [None] * len(source)

    def __len__(self) -> int:
        return len(self._examples)

    def __getitem__(self, index: int) -> Example:
        example = self._examples[index]
        if example is None:  # Two threads may both decode it once; either copy is the same.
            example = self._examples[index] = self._source[index]
        return example


def source_fields(fields: Sequence[str]) -> tuple[str, ...]:
    """The feature paths a source must decode for `fields`: each field and its quantisation range.

    Args:
        fields: per-pixel fields carried by the pipeline, from FIELDS.

    Returns:
        Paths such as ("video", "depth", "metadata/depth_range") for `movi.data_source(fields=...)`;
        "boxes" are made from the segmentations.
    """
    stored = [name for name in fields if name != "boxes"]
    if "boxes" in fields and "segmentations" not in stored:
        stored.append("segmentations")
    ranges = tuple(f"metadata/{name}_range" for name in stored if name in _QUANTIZED)
    return tuple(stored) + ranges


def dataset_from_config(
    data_config: ml_collections.ConfigDict,
    *,
    train: bool,
    seed: int,
    process_index: int | None = None,
    process_count: int | None = None,
) -> grain.IterDataset:
    """The training or evaluation batches of `config.data` (see configs/synthetic.py).

    Args:
        data_config: `config.data`: name, data_dir, train_split, eval_split, image_size,
            chunk_length, normalization, flip_prob, fields, global_batch_size, eval_batch_size,
            num_workers, prefetch_buffer_size, keep_decoded.
        train: training batches of `train_split`, or one evaluation pass over `eval_split`.
        seed: the training seed (unused for evaluation, which is deterministic).
        process_index: this process (default `jax.process_index()`).
        process_count: all processes (default `jax.process_count()`).

    Returns:
        A grain IterDataset of batches.
    """
    # Imported here: the TFDS side pulls in TensorFlow, which in-memory pipelines never need.
    from ssync_jax.data import movi
    split = data_config.train_split if train else data_config.eval_split
    source = movi.data_source(
        data_config.name, split, data_config.data_dir, fields=source_fields(data_config.fields)
    )
    if data_config.get("keep_decoded", False):  # Absent from the configs of runs made before it existed.
        source = KeptDecoded(source)
    common = dict(
        image_size=tuple(data_config.image_size),
        normalization=data_config.normalization,
        fields=tuple(data_config.fields),
        bicubic=data_config.bicubic,
        num_boxes=data_config.num_boxes if "boxes" in data_config.fields else 0,
        num_workers=data_config.num_workers,
        prefetch_buffer_size=data_config.prefetch_buffer_size,
        process_index=process_index,
        process_count=process_count,
    )
    if train:
        return train_dataset(
            source,
            chunk_length=data_config.chunk_length,
            global_batch_size=data_config.global_batch_size,
            seed=seed,
            flip_prob=data_config.flip_prob,
            **common,
        )
    return eval_dataset(
        source,
        global_batch_size=data_config.eval_batch_size,
        eval_resolution=data_config.eval_resolution,
        **common,
    )
