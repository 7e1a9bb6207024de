"""One comparison case for the authors' code and ours: sizes, random weights and inputs, numpy alone.

`tests/fixtures/make_authors_fixture.py` (a torch virtualenv with the authors' repository) and
`ssync_jax.tools.compare_authors` (this project) both build the MOVi-C model from the same case:
the same state dict, drawn here from a seed in the authors' own key layout, and the same video.
This module imports nothing but numpy, so the torch side can load it by path.

Weights follow PyTorch's defaults (Linear and GRU: U(±1/√fan_in) for weights and biases; slots
N(0, 1/D)), with two deliberate changes that make the comparison cover more of the code: norms
get non-trivial scales and offsets, and the decoder's position embedding is a smooth random field
over the patch grid, so that the decoder's labels form regions with interior patches (noise would
leave the interior loss empty). The last two initial slots are near copies, so that their slots
stay redundant and SSync's merging runs.
"""

import numpy as np

CASES = {
    # The committed fixture: the MOVi-C model with its ViT-S/14 and slots, a 112² input (an 8x8
    # grid) and a narrower decoder, so that the fixture stays a few MB and the tests take seconds.
    "small": dict(
        image_size=112, source_size=48, batch=2, frames=4, num_slots=11, slot_dim=64,
        decoder_hidden=(256, 256, 256), seed=0, global_step=30_000, max_steps=100_000, num_classes=11,
    ),
    # The paper's MOVi-C training shape (configs/SSync/movi_c.yaml), batch 2 x 4 frames.
    "movi_c": dict(
        image_size=336, source_size=128, batch=2, frames=4, num_slots=11, slot_dim=64,
        decoder_hidden=(1024, 1024, 1024), seed=0, global_step=30_000, max_steps=100_000, num_classes=11,
    ),
}  # fmt: skip
DINOV2 = "vit_small_patch14_dinov2"
FEATURE_DIM = 384
PATCH_SIZE = 14


def random_state(names_shapes: list[tuple[str, tuple[int, ...]]], seed: int) -> dict[str, np.ndarray]:
    """The case's weights under the authors' state-dict names, drawn in the given order.

    Args:
        names_shapes: (name, shape) of every tensor of the authors' `state_dict()`, in its order.
        seed: numpy generator seed.

    Returns:
        name -> float32 array.
    """
    rng = np.random.default_rng(seed)
    shapes = dict(names_shapes)
    state = {}
    for name, shape in names_shapes:
        shape = tuple(shape)
        if name == "initializer.slots":
            slots = rng.normal(size=shape) * shape[-1] ** -0.5  # [1, S, D]
            slots[:, -1] = slots[:, -2] + 1e-3 * rng.normal(size=shape[-1])
            state[name] = slots
        elif name.endswith("decoder.module.pos_emb"):
            state[name] = _smooth_field(rng, shape)
        elif name.endswith(("cls_token", "pos_embed", "mask_token")):
            state[name] = 0.02 * rng.normal(size=shape)
        elif name.endswith("gamma"):  # DINOv2 LayerScale
            state[name] = rng.uniform(0.2, 0.6, size=shape)
        elif name.endswith("weight") and len(shape) == 1:  # LayerNorm scale
            state[name] = 1.0 + 0.1 * rng.normal(size=shape)
        elif name.endswith("bias") and len(shapes.get(name[: -len("bias")] + "weight", (0, 0))) == 1:
            state[name] = 0.1 * rng.normal(size=shape)  # LayerNorm offset
        else:  # Linear / conv weights and their biases, GRU weights and biases
            weight = name[: -len("bias")] + "weight" if name.endswith("bias") else name
            weight = weight.replace("bias_ih", "weight_ih").replace("bias_hh", "weight_hh")
            fan_in = int(np.prod(shapes.get(weight, shape)[1:]))
            bound = fan_in**-0.5
            state[name] = rng.uniform(-bound, bound, size=shape)
    return {name: value.astype(np.float32) for name, value in state.items()}


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """[1, 1, N, D] low-frequency random cosines over the √N x √N grid, scaled like N(0, 1/D)."""
    num_patches, dim = shape[-2:]
    side = int(round(num_patches**0.5))
    rows, cols = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    frequencies = rng.uniform(-1.5, 1.5, size=(dim, 2)) * 2 * np.pi / side
    phases = rng.uniform(0, 2 * np.pi, size=dim)
    angles = rows.reshape(-1, 1) * frequencies[:, 0] + cols.reshape(-1, 1) * frequencies[:, 1] + phases
    return (np.cos(angles) * (2 / dim) ** 0.5).reshape(shape)  # [1, 1, N, D]


def random_video(case: dict) -> tuple[np.ndarray, np.ndarray]:
    """Coloured ellipses moving over a gradient, and their ids: a video with objects to find.

    Args:
        case: one of `CASES`.

    Returns:
        uint8 video [B, T, h, w, 3] and uint8 segmentations [B, T, h, w] (0 background, 1..K
        objects) at `source_size`; the last frame of the first video has no object, as happens
        when objects leave the view.
    """
    rng = np.random.default_rng(case["seed"] + 1)
    batch, frames, size = case["batch"], case["frames"], case["source_size"]
    rows, cols = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    video = np.zeros((batch, frames, size, size, 3))
    ids = np.zeros((batch, frames, size, size), np.uint8)
    for b in range(batch):
        tint = rng.uniform(0.2, 0.8, size=3)
        background = tint * (0.6 + 0.4 * rows[..., None] * cols[..., None])
        objects = [
            (rng.uniform(0.2, 0.8, 2), rng.uniform(-0.08, 0.08, 2), rng.uniform(0.08, 0.2, 2), rng.uniform(0, 1, 3))
            for _ in range(3 + b)
        ]
        for t in range(frames):
            video[b, t] = background
            if b == 0 and t == frames - 1:
                continue
            for k, (centre, velocity, radii, colour) in enumerate(objects, start=1):
                y, x = centre + t * velocity
                inside = ((rows - y) / radii[0]) ** 2 + ((cols - x) / radii[1]) ** 2 <= 1
                video[b, t][inside] = colour
                ids[b, t][inside] = k
    return np.round(video * 255).astype(np.uint8), ids


def metric_case(seed: int = 0) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Ground-truth and predicted ids for the metrics alone, with frames and a video without objects.

    Returns:
        true ids uint8 [3, 5, 16, 16] (classes 0..5), predicted ids uint8 [3, 5, 16, 16] (0..6),
        the number of true classes and of predicted classes.
    """
    rng = np.random.default_rng(seed + 2)
    true_ids = np.zeros((3, 5, 16, 16), np.uint8)
    for b in range(2):
        for k in range(1, 6):
            top, left = rng.integers(0, 12, size=2)
            height, width = rng.integers(2, 7, size=2)
            true_ids[b, :, top : top + height, left : left + width] = k
    true_ids[0, 2] = 0  # a frame without foreground; video 2 has none at all
    noisy = rng.random(true_ids.shape) < 0.2
    pred_ids = np.where(noisy, rng.integers(0, 7, size=true_ids.shape), true_ids % 7).astype(np.uint8)
    return true_ids, pred_ids, 6, 7


def case_config(config, case: dict):
    """`config` (an ml_collections ConfigDict of the paper's MOVi-C recipe) at the case's input size, slots,
    decoder and batch; a copy, `config` unchanged."""
    config = config.copy_and_resolve_references()
    size = (case["image_size"],) * 2
    config.data.image_size = size
    config.data.global_batch_size = case["batch"]
    config.loss_group_size = None  # One GPU's batch: the case is one group.
    config.model.image_size = size
    config.model.num_slots = case["num_slots"]
    config.model.slot_dim = case["slot_dim"]
    config.model.decoder.hidden_sizes = tuple(case["decoder_hidden"])
    config.model.encoder.weights = None
    config.num_train_steps = case["max_steps"]
    return config
