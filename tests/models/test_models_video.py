"""The video model: shapes, masks, scan vs. an unrolled loop, chunked evaluation, bf16, frozen backbone."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests import model_configs

from ssync_jax.models import build_model, load_pretrained_backbone, trainable_mask
from ssync_jax.models.video import pixel_patches
from ssync_jax.models.corrector import SlotAttention
from ssync_jax.models.decoders import MLPDecoder, SpatialBroadcastDecoder
from ssync_jax.models.layers import MLP
from ssync_jax.models.encoders import ResNet34, SaviCNN
from ssync_jax.models.initializers import BoxConditionedSlots, FixedLearnedSlots, GaussianSlots
from ssync_jax.models.predictor import TransformerPredictor

BATCH, FRAMES, SLOTS, SLOT_DIM = 2, 3, 3, 16


def tiny_config(**decoder):
    """8x8 frames, a 2-layer CNN (stride 2 -> 4x4 = 16 tokens of width 8), 3 slots of width 16."""
    config = model_configs.cnn_feature_model(
        SLOTS, SLOT_DIM, (8, 8), freeze_backbone=True, cnn_features=(8, 8), cnn_strides=(1, 2), position_embedding=True
    )
    config.decoder.hidden_sizes = (32,)
    config.decoder.update(decoder)
    return config


def random_variables(model, *inputs, scale=0.3):
    """N(0, scale²) values in the shapes `model.init` gives (skips compiling the initialisers)."""
    shapes = jax.eval_shape(lambda *x: model.init(jax.random.key(0), *x), *inputs)
    rng = np.random.default_rng(0)
    return jax.tree.map(lambda s: jnp.asarray(rng.normal(0.0, scale, s.shape), s.dtype), shapes)


@pytest.fixture(scope="module")
def tiny():
    config = tiny_config()
    model = build_model(config)
    video = jax.random.normal(jax.random.key(1), (BATCH, FRAMES, 8, 8, 3))
    variables = random_variables(model, video)
    return config, model, variables, video, jax.jit(model.apply)(variables, video)


def test_outputs_have_documented_shapes(tiny):
    _, _, _, _, out = tiny
    assert out["slots"].shape == (BATCH, FRAMES, SLOTS, SLOT_DIM)
    for key in ("enc_attn", "enc_logits", "dec_masks", "dec_logits"):
        assert out[key].shape == (BATCH, FRAMES, 4, 4, SLOTS), key  # on the 4x4 patch grid
    assert out["reconstruction"].shape == out["target"].shape == (BATCH, FRAMES, 16, 8)
    assert out["state"].shape == (BATCH, SLOTS, SLOT_DIM)


def test_decoder_and_encoder_masks_sum_to_one_over_slots(tiny):
    _, _, _, _, out = tiny
    np.testing.assert_allclose(out["dec_masks"].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out["enc_attn"].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(jax.nn.softmax(out["dec_logits"], -1), out["dec_masks"], atol=1e-6)


def test_scan_equals_unrolled_loop_over_frames(tiny):
    config, model, variables, video, out = tiny
    params = variables["params"]
    features, _ = jax.jit(lambda v: model.apply(variables, v, method=lambda m, x: m.encoder(x)))(video)
    corrector = SlotAttention(config.corrector.num_iterations, gru_state=config.corrector.gru_state)
    correct = jax.jit(corrector.apply, static_argnums=3)
    predictor = TransformerPredictor(
        config.predictor.num_blocks,
        config.predictor.num_heads,
        attention_logit_scale=config.predictor.attention_logit_scale,
    )
    predict = jax.jit(predictor.apply)
    flat = lambda maps: maps.reshape(BATCH, 16, SLOTS)  # noqa: E731  [B, 4, 4, S] -> [B, N, S]
    predicted = jnp.broadcast_to(params["initializer"]["slots"], (BATCH, SLOTS, SLOT_DIM))
    for t in range(FRAMES):
        iterations = config.corrector.first_frame_iterations if t == 0 else config.corrector.num_iterations
        slots, attention, logits = correct(
            {"params": params["processor"]["corrector"]}, predicted, features[:, t], iterations
        )
        predicted = predict({"params": params["processor"]["predictor"]}, slots)
        np.testing.assert_allclose(out["slots"][:, t], slots, atol=1e-5)
        np.testing.assert_allclose(flat(out["enc_logits"][:, t]), logits, atol=1e-5)
        np.testing.assert_allclose(flat(out["enc_attn"][:, t]), attention, atol=1e-5)
    np.testing.assert_allclose(out["state"], predicted, atol=1e-5)


def test_chunked_evaluation_with_carried_state_equals_one_pass(tiny):
    _, model, variables, video, out = tiny
    apply = jax.jit(model.apply)
    first = apply(variables, video[:, :1])
    rest = apply(variables, video[:, 1:], state=first["state"])
    for key in ("slots", "enc_logits", "dec_masks", "reconstruction"):
        chunked = jnp.concatenate([first[key], rest[key]], axis=1)
        np.testing.assert_allclose(chunked, out[key], atol=1e-5, err_msg=key)
    np.testing.assert_allclose(rest["state"], out["state"], atol=1e-5)


def test_bfloat16_compute_stays_close_to_float32(tiny):
    config, _, variables, video, out = tiny
    config = tiny_config()
    config.dtype = "bfloat16"
    config.encoder.backbone_dtype = "bfloat16"
    approx = jax.jit(build_model(config).apply)(variables, video)
    np.testing.assert_allclose(approx["dec_masks"], out["dec_masks"], atol=0.05)
    slots_error = np.abs(np.asarray(approx["slots"], np.float32) - np.asarray(out["slots"])).max()
    assert slots_error < 0.05 * np.abs(np.asarray(out["slots"])).max()


def test_frozen_backbone_receives_no_gradient_and_is_masked_out(tiny):
    config, _, variables, video, _ = tiny

    def gradients(freeze):
        changed = tiny_config()
        changed.encoder.freeze_backbone = freeze
        model = build_model(changed)

        def loss(params):
            features, _ = model.apply({"params": params}, video, method=lambda m, v: m.encoder(v))
            return jnp.sum(features**2)

        return jax.jit(jax.grad(loss))(variables["params"])["encoder"]

    trained, frozen = gradients(False), gradients(True)
    assert all(jnp.all(g == 0) for g in jax.tree.leaves(frozen["backbone"]))
    assert all(jnp.any(g != 0) for g in jax.tree.leaves(trained["backbone"]))
    assert jnp.any(frozen["output_transform"]["dense_0"]["kernel"] != 0)
    mask = trainable_mask(variables["params"], config)
    assert not any(jax.tree.leaves(mask["encoder"]["backbone"]))
    assert all(jax.tree.leaves(mask["encoder"]["output_transform"]))
    assert all(jax.tree.leaves(mask["decoder"])) and all(jax.tree.leaves(mask["processor"]))


def test_spatial_broadcast_decoder_returns_pixel_masks_that_sum_to_one():
    decoder = SpatialBroadcastDecoder(3, (2, 2), (8, 8, 8), (True, True, False))
    slots = jax.random.normal(jax.random.key(1), (2, SLOTS, SLOT_DIM))
    out = jax.jit(decoder.apply)(random_variables(decoder, slots), slots)
    assert out["masks"].shape == out["alpha_logits"].shape == (2, 8, 8, SLOTS)
    assert out["reconstruction"].shape == (2, 8, 8, 3)
    np.testing.assert_allclose(out["masks"].sum(-1), 1.0, atol=1e-5)


def test_pixel_model_outputs_per_pixel_masks_and_targets_the_video():
    config = tiny_config(
        name="spatial_broadcast",
        resolution=(2, 2),
        features=(8, 8, 8),
        upsample=(True, True, False),
        kernel_size=5,
        patch_size=1,
        target="video",
    )
    model = build_model(config)
    video = jax.ShapeDtypeStruct((1, 2, 8, 8, 3), jnp.float32)
    out = jax.eval_shape(lambda v: model.apply(model.init(jax.random.key(0), v), v), video)
    assert out["dec_masks"].shape == out["dec_logits"].shape == (1, 2, 8, 8, SLOTS)
    assert out["reconstruction"].shape == out["target"].shape == (1, 2, 8, 8, 3)


def test_box_conditioned_slots_prepend_the_background_box_and_check_shapes():
    initializer = BoxConditionedSlots(num_slots=3, slot_dim=4, hidden_size=8)
    boxes = jnp.array([[[0.1, 0.1, 0.5, 0.5], [0.2, 0.3, 0.9, 1.0]]])  # [B=1, K=2, 4]
    variables = initializer.init(jax.random.key(0), 1, boxes)
    slots = initializer.apply(variables, 1, boxes)
    assert slots.shape == (1, 3, 4)
    background = initializer.apply(variables, 1, jnp.zeros((1, 2, 4)))[:, 0]
    np.testing.assert_allclose(slots[:, 0], background)
    with pytest.raises(ValueError, match=r"conditioning boxes of shape \(1, 2, 4\)"):
        initializer.apply(variables, 1, None)


def test_gaussian_slots_follow_the_slots_rng_stream():
    initializer = GaussianSlots(num_slots=3, slot_dim=4)
    variables = initializer.init({"params": jax.random.key(0), "slots": jax.random.key(1)}, 2)
    a = initializer.apply(variables, 2, rngs={"slots": jax.random.key(2)})
    b = initializer.apply(variables, 2, rngs={"slots": jax.random.key(2)})
    c = initializer.apply(variables, 2, rngs={"slots": jax.random.key(3)})
    assert a.shape == (2, 3, 4)
    np.testing.assert_array_equal(a, b)
    assert np.abs(np.asarray(a - c)).max() > 1e-3


def test_fixed_learned_slots_are_shared_across_the_batch():
    initializer = FixedLearnedSlots(num_slots=3, slot_dim=4)
    slots = initializer.apply(initializer.init(jax.random.key(0), 2), 2)
    np.testing.assert_array_equal(slots[0], slots[1])


def test_dinov2_model_takes_multiples_of_14_and_targets_backbone_tokens():
    config = model_configs.dinov2_model(num_slots=SLOTS, slot_dim=SLOT_DIM, image_size=(28, 42))
    model = build_model(config)
    video = jax.ShapeDtypeStruct((1, 2, 28, 42, 3), jnp.float32)
    out = jax.eval_shape(lambda v: model.apply(model.init(jax.random.key(0), v), v), video)
    assert out["dec_masks"].shape == (1, 2, 2, 3, SLOTS)  # the 2x3 patch grid of 28x42
    assert out["reconstruction"].shape == out["target"].shape == (1, 2, 6, 384)


@pytest.mark.parametrize(
    "backbone, size, grid, channels",
    [
        (SaviCNN((32,) * 4, (1, 1, 1, 1)), 64, 64, 32),  # SAVi-S at 64²
        (SaviCNN((64,) * 4, (2, 1, 1, 1)), 128, 64, 64),  # SAVi-M at 128²
        (ResNet34(), 128, 16, 512),  # SAVi-L at 128²
    ],
)
def test_savi_backbones_give_the_documented_feature_maps(backbone, size, grid, channels):
    images = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    out = jax.eval_shape(lambda x: backbone.apply(backbone.init(jax.random.key(0), x), x), images)
    assert out.shape == (1, grid, grid, channels)


def test_pretrained_backbone_of_another_size_is_rejected_naming_both():
    config = model_configs.dinov2_model("vit_s14")
    config.encoder.weights = str(Path(__file__).resolve().parents[1] / "fixtures" / "dinov2_tiny_hf")
    with pytest.raises(ValueError, match="dinov2_variant='vit_s14'"):
        load_pretrained_backbone({}, config)


def test_mlp_decoder_mixing_hidden_states_equals_mixing_each_slots_output():
    decoder = MLPDecoder(output_size=5, num_patches=6, hidden_sizes=(16, 16))
    slots = jax.random.normal(jax.random.key(2), (2, SLOTS, 8))
    variables = random_variables(decoder, slots)
    params = variables["params"]
    assert set(params) == {"pos_emb", "mlp"} and set(params["mlp"]) == {"dense_0", "dense_1", "dense_2"}
    out = jax.jit(decoder.apply)(variables, slots)
    # The plain form: the whole MLP per slot and patch, then the mixture of its outputs.
    x = slots[:, :, None, :] + params["pos_emb"]  # [B, S, N, D]
    plain = MLP((16, 16), 6).apply({"params": params["mlp"]}, x)  # [B, S, N, F+1]
    alpha = jnp.moveaxis(plain[..., -1], 1, -1)  # [B, N, S]
    masks = jax.nn.softmax(alpha, axis=-1)
    np.testing.assert_allclose(out["alpha_logits"], alpha, atol=1e-5)
    np.testing.assert_allclose(out["reconstruction"], jnp.einsum("bns,bsnf->bnf", masks, plain[..., :-1]), atol=1e-5)


def test_hard_reconstruction_decodes_each_patch_by_its_argmax_slot_alone():
    decoder = MLPDecoder(output_size=5, num_patches=6, hidden_sizes=(16, 16))
    slots = jax.random.normal(jax.random.key(3), (2, SLOTS, 8))
    variables = random_variables(decoder, slots)
    out = jax.jit(decoder.apply)(variables, slots)
    # Each slot decoded alone (a one-slot mixture is that slot's output), then the argmax slot's picked.
    alone = np.stack([decoder.apply(variables, slots[:, s : s + 1])["reconstruction"] for s in range(SLOTS)], 2)
    winner = np.argmax(np.asarray(out["alpha_logits"]), axis=-1)  # [B, N]
    picked = np.take_along_axis(alone, winner[..., None, None], axis=2)[:, :, 0]  # [B, N, F]
    np.testing.assert_allclose(out["hard_reconstruction"], picked, atol=1e-5)
    assert np.abs(np.asarray(out["hard_reconstruction"]) - np.asarray(out["reconstruction"])).max() > 1e-3

    broadcast = SpatialBroadcastDecoder(3, (2, 2), (8,), (True,), kernel_size=3)
    variables = random_variables(broadcast, slots)
    out = jax.jit(broadcast.apply)(variables, slots)
    alone = np.stack([broadcast.apply(variables, slots[:, s : s + 1])["reconstruction"] for s in range(SLOTS)], 3)
    winner = np.argmax(np.asarray(out["alpha_logits"]), axis=-1)  # [B, H, W]
    picked = np.take_along_axis(alone, winner[..., None, None], axis=3)[:, :, :, 0]  # [B, H, W, C]
    np.testing.assert_allclose(out["hard_reconstruction"], picked, atol=1e-5)


def _cnn_by_hand(backbone: dict, frames: np.ndarray, strides: tuple[int, ...]) -> np.ndarray:
    """The SAVi CNN with lax convolutions: 'SAME' padding, ReLU between layers. frames [B, H, W, 3]."""
    x = jnp.asarray(frames)
    for i, stride in enumerate(strides):
        layer = backbone[f"conv_{i}"]
        x = jax.lax.conv_general_dilated(
            x, layer["kernel"], (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        ) + layer["bias"]
        if i < len(strides) - 1:
            x = jax.nn.relu(x)
    return np.asarray(x, np.float64)


def test_layernorm_tokens_are_the_cnns_map_standardised_over_channels_and_are_the_target(tiny):
    config = tiny_config()
    config.encoder.token_norm = "layernorm"
    _, _, variables, video, raw = tiny
    out = jax.jit(build_model(config).apply)(variables, video)  # No new params: the norm has none.
    feature_map = _cnn_by_hand(variables["params"]["encoder"]["backbone"], video.reshape(-1, 8, 8, 3), (1, 2))
    tokens = feature_map.reshape(BATCH, FRAMES, 16, 8)
    standardised = (tokens - tokens.mean(-1, keepdims=True)) / np.sqrt(tokens.var(-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(out["target"], standardised, atol=1e-4)
    np.testing.assert_allclose(raw["target"], tokens, atol=1e-4)  # "none": the map as it is.


def test_no_gradient_reaches_a_trainable_backbone_through_its_own_target(tiny):
    config = tiny_config()
    config.encoder.freeze_backbone = False
    config.encoder.token_norm = "layernorm"
    model = build_model(config)
    _, _, variables, video, _ = tiny
    weights = jax.random.normal(jax.random.key(4), (BATCH, FRAMES, 16, 8))

    def of(output):
        return jax.jit(jax.grad(lambda p: jnp.sum(weights * model.apply({"params": p}, video)[output])))(
            variables["params"]
        )["encoder"]["backbone"]

    assert all(jnp.all(g == 0) for g in jax.tree.leaves(of("target")))
    assert all(jnp.any(g != 0) for g in jax.tree.leaves(of("reconstruction")))  # The slots' path trains it.


def test_an_unknown_token_norm_names_the_key_and_the_choices():
    config = tiny_config()
    config.encoder.token_norm = "batchnorm"
    with pytest.raises(ValueError, match=r"encoder.token_norm = 'batchnorm'.*'layernorm', 'none'"):
        build_model(config)


@pytest.mark.parametrize("target, channels", [("depth", 1), ("flow", 2)])
def test_depth_and_flow_models_reconstruct_the_batchs_field_in_patches(target, channels):
    config = tiny_config(
        name="spatial_broadcast", resolution=(4, 4), features=(8,), upsample=(False,), kernel_size=3,
        patch_size=2, target=target,
    )  # fmt: skip
    model = build_model(config)
    video = jnp.zeros((1, 2, 8, 8, 3))
    field = jnp.arange(1 * 2 * 8 * 8 * channels, dtype=jnp.float32).reshape(1, 2, 8, 8, channels)
    variables = random_variables(model, video)
    out = jax.jit(lambda v, f: model.apply(variables, v, field=f))(video, field)
    expected = jnp.log1p(field) if target == "depth" else field
    np.testing.assert_allclose(out["target"], pixel_patches(expected, 2), rtol=1e-6)
    assert out["reconstruction"].shape == (1, 2, 4, 4, 4 * channels)
    assert "target" not in jax.jit(model.apply)(variables, video)  # Evaluation needs none.


def test_mlp_decoder_reconstructs_each_patchs_pixels_on_the_encoders_grid():
    config = tiny_config(target="video", patch_size=2)  # 8x8 frames, a 4x4 grid: 2x2 pixels per patch.
    model = build_model(config)
    video = jax.random.normal(jax.random.key(2), (1, 2, 8, 8, 3))
    out = jax.jit(model.apply)(random_variables(model, video), video)
    assert out["reconstruction"].shape == out["target"].shape == (1, 2, 16, 12)
    # Patch n = (row, col) of the 4x4 grid holds its 2x2 pixels row by row, channels last.
    expected = np.asarray(video).reshape(1, 2, 4, 2, 4, 2, 3).transpose(0, 1, 2, 4, 3, 5, 6).reshape(1, 2, 16, 12)
    np.testing.assert_array_equal(out["target"], expected)
    with pytest.raises(ValueError, match="decoder.patch_size=4 cuts .* set it to 2"):
        build_model(tiny_config(target="video", patch_size=4))


def test_a_new_target_is_one_entry_of_the_registry(monkeypatch):
    from ssync_jax import decoder_targets

    # A grey-level target: one channel, the mean of the frame's colours.
    grey = decoder_targets.Target("video", 1, lambda v: jnp.mean(v, axis=-1, keepdims=True), "grey levels")
    monkeypatch.setitem(decoder_targets.TARGETS, "grey", grey)
    model = build_model(tiny_config(target="grey", patch_size=2))
    video = jax.random.normal(jax.random.key(3), (1, 2, 8, 8, 3))
    out = jax.jit(model.apply)(random_variables(model, video), video)
    expected = np.asarray(video).mean(-1).reshape(1, 2, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 16, 4)
    np.testing.assert_allclose(out["target"], expected, rtol=1e-6)
    assert out["reconstruction"].shape == (1, 2, 16, 4)


def test_unknown_target_names_the_config_key_and_the_choices():
    with pytest.raises(ValueError, match=r"config.model.decoder.target='rgbd' is unknown; choose one of \['depth', "):
        build_model(tiny_config(target="rgbd"))
