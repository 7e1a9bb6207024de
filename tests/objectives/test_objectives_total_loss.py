"""The loss combinator: the registry, config validation, weighting, warm-up inside jit, loss groups."""

import jax
import ml_collections
import numpy as np
import pytest

from ssync_jax.objectives import reconstruction, registry, resample, slot_contrast, srl, ssync, total_loss

PAPER_LOSSES = {
    "reconstruction": {"weight": 1.0},
    "slot_contrast": {"weight": 0.5, "temperature": 0.1, "batch_contrast": True},
    "ssync_boundary": {"weight": 1.0, "warmup_fraction": 0.3},
    "ssync_interior": {"weight": 1.0, "warmup_fraction": 0.3},
}


def _outputs(seed=0, batch=2, frames=2, side=4, num_slots=3):
    """Model outputs for noisy maps of vertical stripes, one per slot, on a side x side grid."""
    rng = np.random.default_rng(seed)
    stripes = np.tile(np.arange(side) * num_slots // side, (batch, frames, side, 1))  # [B, T, H, W]
    scene = 3.0 * np.eye(num_slots, dtype=np.float32)[stripes]  # [B, T, H, W, S]
    return {
        "slots": rng.normal(size=(batch, frames, num_slots, 8)).astype(np.float32),
        "enc_logits": scene + rng.normal(size=scene.shape).astype(np.float32),
        "dec_logits": scene + rng.normal(size=scene.shape).astype(np.float32),
        "reconstruction": rng.normal(size=(batch, frames, side * side, 5)).astype(np.float32),
        "target": rng.normal(size=(batch, frames, side * side, 5)).astype(np.float32),
    }


def _flat(maps):
    """[B, T, H, W, S] -> [B, T, N, S], as the SSync functions take them."""
    return maps.reshape(*maps.shape[:2], -1, maps.shape[-1])


@jax.jit
def _paper_terms_one_by_one(outputs):
    enc_logits, dec_logits = _flat(outputs["enc_logits"]), _flat(outputs["dec_logits"])
    labels = ssync.pseudo_labels(enc_logits, dec_logits, (4, 4))
    return {
        "reconstruction": reconstruction.reconstruction_loss(outputs["reconstruction"], outputs["target"]),
        "slot_contrast": slot_contrast.slot_contrast_loss(outputs["slots"], 0.1, True),
        "ssync_boundary": ssync.boundary_loss(dec_logits, labels.enc_labels, labels.boundary_mask),
        "ssync_interior": ssync.interior_loss(enc_logits, labels.dec_labels, labels.interior_mask),
    }


def test_paper_config_total_is_the_weighted_sum_of_its_terms_after_warmup():
    outputs = _outputs()
    loss_fn = jax.jit(total_loss.build_loss_fn(PAPER_LOSSES, {"merge_iou_threshold": 0.7}))
    total, terms, stats = loss_fn(outputs, 30, 100)

    expected = _paper_terms_one_by_one(outputs)
    assert set(terms) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(terms[name], value, rtol=1e-5, err_msg=name)
    weighted = expected["reconstruction"] + 0.5 * expected["slot_contrast"]
    weighted += expected["ssync_boundary"] + expected["ssync_interior"]
    np.testing.assert_allclose(total, weighted, rtol=1e-5)
    assert stats["ssync_boundary/active"] == 1.0 and stats["ssync_interior/active"] == 1.0
    assert 0.0 < stats["ssync/boundary_fraction"] < 1.0 and 0.0 < stats["ssync/interior_fraction"] < 1.0


def test_ssync_losses_switch_on_at_the_warmup_step_without_recompiling():
    loss_fn = total_loss.build_loss_fn(PAPER_LOSSES)
    traces = []

    @jax.jit
    def step_total(outputs, step):
        traces.append(step)
        return loss_fn(outputs, step, 1000)

    outputs = _outputs()
    before, terms, stats = step_total(outputs, np.int32(299))
    after, _, _ = step_total(outputs, np.int32(300))
    assert len(traces) == 1
    np.testing.assert_allclose(before, terms["reconstruction"] + 0.5 * terms["slot_contrast"], rtol=1e-6)
    np.testing.assert_allclose(after - before, terms["ssync_boundary"] + terms["ssync_interior"], rtol=1e-5)
    assert stats["ssync_boundary/active"] == 0.0
    assert terms["ssync_boundary"] > 0, "terms are reported unweighted even during warm-up"


def test_config_dicts_are_accepted_and_omitted_settings_take_the_functions_defaults():
    config = ml_collections.ConfigDict({"losses": {"slot_contrast": {}}, "ssync": {}})
    loss_fn = total_loss.build_loss_fn(config.losses, config.ssync)
    outputs = _outputs()
    total, terms, _ = jax.jit(loss_fn)({"slots": outputs["slots"]}, 0, 10)
    # weight 1.0 and slot_contrast_loss's own defaults (τ 0.1, batch negatives)
    np.testing.assert_allclose(total, slot_contrast.slot_contrast_loss(outputs["slots"], 0.1, True), rtol=1e-6)


def test_an_unknown_loss_name_is_rejected_with_the_known_names():
    with pytest.raises(ValueError, match=r"Unknown loss 'ssync_boundry'.*known losses: \['reconstruction'"):
        total_loss.build_loss_fn({"ssync_boundry": {}})


def test_an_unknown_loss_argument_is_rejected_with_the_allowed_ones():
    with pytest.raises(ValueError, match=r"Unknown setting\(s\) \['temp'\] in config.losses.slot_contrast"):
        total_loss.build_loss_fn({"slot_contrast": {"temp": 0.1}})


def test_an_unknown_ssync_target_argument_is_rejected():
    with pytest.raises(ValueError, match=r"\['n_bd'\] in config.ssync; allowed: \['max_diff_interior'"):
        total_loss.build_loss_fn({"ssync_boundary": {}}, {"n_bd": 1})


@pytest.mark.parametrize(
    "losses, message",
    [
        ({}, "config.losses is empty"),
        ({"reconstruction": {"weight": "1"}}, "weight must be a number"),
        ({"ssync_interior": {"warmup_fraction": 1.5}}, r"warmup_fraction must lie in \[0, 1\]"),
        ({"slot_contrast": {"temperature": 0.0}}, "temperature must be positive"),
        ({"srl": {"group_size": 0}}, "group_size must be positive"),
        ({"srl": {"group_size": 2.5}}, "group_size must be a int like its default 4"),
        ({"slot_contrast": {"batch_contrast": 1}}, "batch_contrast must be a bool"),
    ],
)
def test_out_of_range_arguments_are_rejected(losses, message):
    with pytest.raises(ValueError, match=message):
        total_loss.build_loss_fn(losses)


def test_a_missing_model_output_names_the_losses_and_the_output():
    loss_fn = total_loss.build_loss_fn({"reconstruction": {}})
    with pytest.raises(KeyError, match=r"config.losses \['reconstruction'\] read model outputs \['target'\]"):
        loss_fn({"reconstruction": np.zeros(3)}, 0, 10)


def test_a_pixel_decoder_map_is_area_averaged_onto_the_encoder_grid():
    outputs = _outputs()
    pixel_map = np.random.default_rng(5).normal(size=(2, 2, 8, 8, 3)).astype(np.float32)
    on_grid = resample.area_resample_to_grid(pixel_map, (4, 4))  # [B, T, 4, 4, S]
    losses = {"ssync_boundary": {"warmup_fraction": 0.0}, "ssync_interior": {"warmup_fraction": 0.0}}
    loss_fn = jax.jit(total_loss.build_loss_fn(losses))
    from_pixels = loss_fn({**outputs, "dec_logits": pixel_map}, 0, 10)
    from_grid = loss_fn({**outputs, "dec_logits": on_grid}, 0, 10)
    for a, b in zip(jax.tree.leaves(from_pixels), jax.tree.leaves(from_grid)):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_a_non_square_patch_grid_comes_from_the_maps_shape():
    outputs = _outputs()
    maps = {k: outputs[k][:, :, :3] for k in ("enc_logits", "dec_logits")}  # [B, T, 3, 4, S]
    _, terms, _ = jax.jit(total_loss.build_loss_fn({"ssync_boundary": {}}))(maps, 0, 10)
    enc_logits, dec_logits = _flat(maps["enc_logits"]), _flat(maps["dec_logits"])
    labels = ssync.pseudo_labels(enc_logits, dec_logits, (3, 4))
    expected = ssync.boundary_loss(dec_logits, labels.enc_labels, labels.boundary_mask)
    np.testing.assert_allclose(terms["ssync_boundary"], expected, rtol=1e-6)


def test_srl_term_is_the_sum_of_both_alignment_directions():
    outputs = _outputs(frames=4)
    _, terms, _ = jax.jit(total_loss.build_loss_fn({"srl": {"temperature": 0.2}}))(outputs, 0, 10)
    enc_logits, dec_logits = _flat(outputs["enc_logits"]), _flat(outputs["dec_logits"])
    directions = jax.jit(srl.srl_losses, static_argnums=2)(enc_logits, dec_logits, 4, 0.2)
    np.testing.assert_allclose(terms["srl"], directions["encoder"] + directions["decoder"], rtol=1e-5)


def test_loss_groups_average_the_terms_computed_on_each_group_alone():
    outputs = _outputs(batch=4)
    grouped = jax.jit(total_loss.build_loss_fn(PAPER_LOSSES, group_size=2))
    whole = jax.jit(total_loss.build_loss_fn(PAPER_LOSSES))
    total, terms, _ = grouped(outputs, 50, 100)
    halves = [whole({k: v[i : i + 2] for k, v in outputs.items()}, 50, 100) for i in (0, 2)]
    for name in PAPER_LOSSES:
        np.testing.assert_allclose(terms[name], (halves[0][1][name] + halves[1][1][name]) / 2, rtol=1e-5)
    np.testing.assert_allclose(total, (halves[0][0] + halves[1][0]) / 2, rtol=1e-5)
    # SlotContrast's negatives differ: the whole batch is not the mean of its halves.
    assert abs(whole(outputs, 50, 100)[1]["slot_contrast"] - terms["slot_contrast"]) > 1e-3
    with pytest.raises(ValueError, match="batch of 4 clips does not split into loss groups of .*=3"):
        total_loss.build_loss_fn(PAPER_LOSSES, group_size=3)(outputs, 0, 10)


def test_a_loss_registered_in_its_own_module_is_usable_from_the_config():
    @registry.register("slot_norm_test")
    def slot_norm(slots, power=2.0):
        return (slots**power).mean()

    try:
        outputs = _outputs()
        _, terms, _ = total_loss.build_loss_fn({"slot_norm_test": {"power": 4.0}})(outputs, 0, 10)
        np.testing.assert_allclose(terms["slot_norm_test"], (outputs["slots"] ** 4).mean(), rtol=1e-6)
        with pytest.raises(ValueError, match="registered twice"):
            registry.register("slot_norm_test")(slot_norm)
    finally:
        del registry.LOSSES["slot_norm_test"]
    with pytest.raises(ValueError, match=r"takes inputs \['pixels'\] that are not among"):
        registry.register("bad_test")(lambda pixels: pixels)


def test_a_loss_reading_ssync_labels_under_another_name_trains_with_ssync_and_shows_its_statistics():
    @registry.register("label_agreement_test")
    def label_agreement(enc_labels, dec_labels):
        return (enc_labels == dec_labels).mean()

    try:
        losses = {"reconstruction": {}, "label_agreement_test": {"warmup_fraction": 0.5}}
        assert total_loss.uses_ssync(losses) and total_loss.uses_ssync(PAPER_LOSSES)
        assert not total_loss.uses_ssync({"reconstruction": {}, "slot_contrast": {}})
        _, _, stats = total_loss.build_loss_fn(losses)(_outputs(), 0, 10)
        assert {"ssync/boundary_fraction", "ssync/interior_fraction", "ssync/merged_slots"} <= set(stats)
    finally:
        del registry.LOSSES["label_agreement_test"]
