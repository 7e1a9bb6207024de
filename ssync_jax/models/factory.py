"""Builds the video model from `config.model`, gives its params' shapes, and places pretrained backbone weights in them."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from flax import linen as nn
from flax import traverse_util

from ssync_jax import decoder_targets, errors, sharding
from ssync_jax.models import dinov2, dinov2_weights
from ssync_jax.models.corrector import SlotAttention
from ssync_jax.models.decoders import MLPDecoder, SpatialBroadcastDecoder
from ssync_jax.models.encoders import TOKEN_NORMS, FrameEncoder, ResNet34, SaviCNN
from ssync_jax.models.layers import INIT_SCHEMES
from ssync_jax.models.initializers import BoxConditionedSlots, FixedLearnedSlots, GaussianSlots
from ssync_jax.models.predictor import TransformerPredictor
from ssync_jax.models.video import Processor, VideoModel

_INITIALIZERS = {
    "fixed_learned": FixedLearnedSlots,
    "gaussian": GaussianSlots,
    "box_conditioned": BoxConditionedSlots,
}
BACKBONE_NAME = "backbone"


def _one_of(kind: str, name: str, choices) -> None:
    if name not in choices:
        raise errors.ConfigError(f"config.model.{kind} = {name!r} is unknown; choose one of {sorted(choices)}")


def build_backbone(encoder: ml_collections.ConfigDict) -> nn.Module:
    """The encoder's backbone from `config.model.encoder`.

    Each backbone reads its own keys: "dinov2" `dinov2_variant` and `weights`; "savi_cnn"
    `cnn_features`, `cnn_strides` and `position_embedding`; all of them `backbone_dtype`,
    `freeze_backbone`, `token_norm` (`FrameEncoder`) and `backbone_from` / `backbone_from_step`
    (another run's trained backbone, put in by the training loop at a fresh start).
    """
    _one_of("encoder.backbone", encoder.backbone, ("dinov2", "savi_cnn", "resnet34"))
    dtype = jnp.dtype(encoder.backbone_dtype)
    if encoder.backbone == "dinov2":
        return dinov2.DinoV2ViT(**dinov2_weights.variant_architecture(encoder.dinov2_variant), dtype=dtype)
    if encoder.backbone == "savi_cnn":
        return SaviCNN(tuple(encoder.cnn_features), tuple(encoder.cnn_strides), dtype=dtype)
    return ResNet34(dtype=dtype)


def build_model(config: ml_collections.ConfigDict) -> VideoModel:
    """Builds the video model described by `config.model` (see configs/movi_c.py).

    Args:
        config: The `config.model` section: num_slots, slot_dim, image_size, dtype, and the
            initializer / encoder / corrector / predictor / decoder sub-sections.

    Returns:
        An unbound `VideoModel`; initialise with
        `model.init({"params": key, "slots": key2}, video)` (the "slots" stream only for Gaussian slots).
    """
    dtype = jnp.dtype(config.dtype)
    _one_of("init_scheme", config.init_scheme, INIT_SCHEMES)
    _one_of("initializer.name", config.initializer.name, _INITIALIZERS)
    initializer_cls = _INITIALIZERS[config.initializer.name]
    initializer = initializer_cls(config.num_slots, config.slot_dim, name="initializer")
    backbone = build_backbone(config.encoder)
    tokens = jax.eval_shape(backbone.init_with_output, jax.random.key(0), jnp.zeros((1, *config.image_size, 3)))[0]
    if len(tokens.shape) == 4:  # A CNN's feature map [1, h, w, C].
        patch_grid = tuple(tokens.shape[1:3])
    else:  # A ViT's tokens [1, N, C], row-major over the patches.
        patch_grid = tuple(side // backbone.patch_size for side in config.image_size)
    num_patches = patch_grid[0] * patch_grid[1]
    token_norm = config.encoder.get("token_norm", "none")  # Configs written before it existed: "none".
    _one_of("encoder.token_norm", token_norm, TOKEN_NORMS)
    encoder = FrameEncoder(
        backbone,
        config.slot_dim,
        freeze_backbone=config.encoder.freeze_backbone,
        token_norm=token_norm,
        position_embedding=config.encoder.backbone != "dinov2" and config.encoder.position_embedding,
        init_scheme=config.init_scheme,
        dtype=dtype,
        name="encoder",
    )
    corrector = SlotAttention(
        config.corrector.num_iterations,
        config.corrector.mlp_multiplier,
        config.corrector.eps,
        gru_state=config.corrector.gru_state,
        init_scheme=config.init_scheme,
        dtype=dtype,
    )
    predictor = TransformerPredictor(
        config.predictor.num_blocks,
        config.predictor.num_heads,
        config.predictor.mlp_multiplier,
        attention_logit_scale=config.predictor.attention_logit_scale,
        init_scheme=config.init_scheme,
        dtype=dtype,
    )
    processor = Processor(corrector, predictor, config.corrector.first_frame_iterations, name="processor")
    _one_of("decoder.name", config.decoder.name, ("mlp", "spatial_broadcast"))
    target = decoder_targets.get(config.decoder.target)
    patch_size = config.decoder.patch_size
    if target.field is None and patch_size != 1:
        raise errors.ConfigError(
            f"config.model.decoder.patch_size={patch_size}: the backbone's tokens are reconstructed one per patch; "
            "set it to 1."
        )
    # Values per decoded position: the backbone's width, or a p x p patch of the per-pixel target.
    output_size = tokens.shape[-1] if target.channels is None else target.channels * patch_size**2
    if config.decoder.name == "mlp":
        pixel_grid = tuple(side // patch_size for side in config.image_size)
        if target.field is not None and pixel_grid != patch_grid:
            raise errors.ConfigError(
                f"config.model.decoder.patch_size={patch_size} cuts {tuple(config.image_size)} frames into a "
                f"{pixel_grid} grid, but the MLP decoder decodes the encoder's {patch_grid} patches; set it to "
                f"{config.image_size[0] // patch_grid[0]}."
            )
        decoder = MLPDecoder(
            output_size, num_patches, tuple(config.decoder.hidden_sizes), config.init_scheme, dtype, name="decoder"
        )
    else:
        if target.field is None:
            raise errors.ConfigError(
                "config.model.decoder.name='spatial_broadcast' decodes pixels, not the backbone's tokens; set "
                "config.model.decoder.target to one of "
                f"{sorted(n for n, t in decoder_targets.TARGETS.items() if t.field is not None)}, or use the 'mlp' decoder."
            )
        decoder = SpatialBroadcastDecoder(
            output_size,
            tuple(config.decoder.resolution),
            tuple(config.decoder.features),
            tuple(config.decoder.upsample),
            kernel_size=config.decoder.kernel_size,
            dtype=dtype,
            name="decoder",
        )
    return VideoModel(
        initializer, encoder, processor, decoder, patch_grid, target=config.decoder.target, target_patch_size=patch_size
    )


def init_params_fn(model: VideoModel, config: ml_collections.ConfigDict) -> Callable[[jax.Array], Any]:
    """`rng -> params` of the model at the config's input shape (pure; `model.init` on one zero clip)."""
    video_shape = (1, config.data.chunk_length, *config.data.image_size, 3)
    boxes = jnp.zeros((1, config.model.num_slots - 1, 4)) if config.model.initializer.name == "box_conditioned" else None

    def init_params(rng: jax.Array) -> Any:
        params_rng, slots_rng = jax.random.split(rng)
        return model.init({"params": params_rng, "slots": slots_rng}, jnp.zeros(video_shape), boxes)["params"]

    return init_params


def abstract_params(model: VideoModel, config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh | None = None) -> Any:
    """The params' shapes and dtypes (`jax.ShapeDtypeStruct`s), with their shardings on `mesh` if given:
    a checkpoint's restore target for evaluation and inference (no optimizer is built)."""
    shapes = jax.eval_shape(init_params_fn(model, config), jax.random.key(0))
    if mesh is None:
        return shapes
    return sharding.with_shardings(shapes, sharding.state_shardings(shapes, mesh, config.shard_params))


def load_pretrained_backbone(params: dict, config: ml_collections.ConfigDict) -> dict:
    """Replaces the randomly initialised DINOv2 in `params` by `config.encoder.weights`.

    Args:
        params: The video model's params (from `model.init`).
        config: `config.model`; `encoder.weights` is a Hugging Face directory, hub name or timm file.

    Returns:
        params with `params["encoder"]["backbone"]` replaced (shapes checked).
    """
    if config.encoder.backbone != "dinov2" or not config.encoder.weights:
        return params
    architecture, loaded = dinov2_weights.load(config.encoder.weights)
    expected = dinov2_weights.variant_architecture(config.encoder.dinov2_variant)
    if any(architecture[k] != v for k, v in expected.items()):
        raise errors.ConfigError(
            f"{config.encoder.weights} holds a DINOv2 {architecture}, but config.model.encoder.dinov2_variant="
            f"{config.encoder.dinov2_variant!r} needs {expected}; fix one of them"
        )
    return replace_backbone(params, loaded, f"config.model.encoder.weights={config.encoder.weights}")


def replace_backbone(params: dict, backbone: dict, source: str) -> dict:
    """`params` with the encoder's backbone replaced by `backbone`, after checking that it fits.

    Args:
        params: The video model's params.
        backbone: Params of a backbone of the same architecture (`params["encoder"]["backbone"]`'s tree).
        source: Where `backbone` came from (the config key and value), for the error message.

    Returns:
        The new params (the backbone's leaves as arrays of the current leaves' dtypes).

    Raises:
        ConfigError: naming the first parameter whose presence or shape differs.
    """
    current = traverse_util.flatten_dict(params["encoder"][BACKBONE_NAME], sep="/")
    loaded = traverse_util.flatten_dict(backbone, sep="/")
    where = f"encoder/{BACKBONE_NAME}/"
    for name in sorted(set(current) | set(loaded)):
        ours, theirs = current.get(name), loaded.get(name)
        if ours is None or theirs is None or tuple(ours.shape) != tuple(theirs.shape):
            there = "missing" if theirs is None else str(tuple(theirs.shape))
            here = "missing" if ours is None else str(tuple(ours.shape))
            raise errors.ConfigError(
                f"{source}: its backbone does not fit config.model.encoder ({where}{name} is {there} there, {here} "
                "here); set the backbone keys (cnn_features, cnn_strides, ...) to that run's, or take another run's."
            )
    placed = {name: jnp.asarray(loaded[name], current[name].dtype) for name in current}
    encoder = dict(params["encoder"], **{BACKBONE_NAME: traverse_util.unflatten_dict(placed, sep="/")})
    return dict(params, encoder=encoder)


def trainable_mask(params: dict, config: ml_collections.ConfigDict) -> dict:
    """True for every parameter the optimiser updates (all but a frozen backbone), for `optax.masked`.

    Args:
        params: The video model's params.
        config: `config.model`.

    Returns:
        A tree of bools with the structure of `params`.
    """
    flat = traverse_util.flatten_dict(params)
    frozen = config.encoder.freeze_backbone
    return traverse_util.unflatten_dict(
        {path: not (frozen and path[:2] == ("encoder", BACKBONE_NAME)) for path in flat}
    )
