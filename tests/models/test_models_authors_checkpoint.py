"""configs/movi_c.py is the authors' model: their code's own outputs, loaded from a committed fixture.

`tests/fixtures/authors_movi_c_small.npz` was written by `tests/fixtures/make_authors_fixture.py`
running the authors' PyTorch repository (wjun0830/SSync) on the MOVi-C model with random weights
at a 112² input (an 8x8 patch grid) and a 3x256 decoder: their forward pass, one training step past
the SSync warm-up (their four losses and every gradient), their validation metrics, their metrics
on hand-made ids, and the statistics of their fresh initialisation at the full MOVi-C size. The
state dict is rebuilt here from the same seed in their key layout and imported as a user's
checkpoint is. The same comparison at the real MOVi-C shape is `python -m
ssync_jax.tools.compare_authors` (docs/RESULTS.md, "Equivalence with the authors' code").
"""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs import movi_c
from ssync_jax.models import build_model
from ssync_jax.models.authors_checkpoint import authors_to_flax, flax_to_authors
from ssync_jax.tools import authors_case, compare_authors
from ssync_jax.tools.import_torch_checkpoint import convert, import_checkpoint

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "authors_movi_c_small.npz"
# Their gradients of the same case with their model in float64 (make_authors_fixture.py --float64
# --gradients_only): the exact answer, where float32 rounding separates the two codes.
EXACT_GRADIENTS = FIXTURE.with_name("authors_movi_c_small_grad64.npz")


@pytest.fixture(scope="module")
def reference():
    return compare_authors.load_reference(str(FIXTURE))


@pytest.fixture(scope="module")
def results(reference):
    exact = compare_authors.load_exact_gradients(str(EXACT_GRADIENTS), reference)
    return compare_authors.compare(reference, movi_c.get_config(), exact_gradients=exact)


@pytest.mark.parametrize(
    "quantity",
    ["slots", "encoder logits", "encoder attention", "decoder alpha logits", "decoder masks", "reconstruction"],
)
def test_imported_checkpoint_gives_their_outputs(results, quantity):
    assert results[quantity]["relative"] <= 1e-5, results[quantity]


def test_imported_checkpoint_gives_their_hard_masks(results):
    assert results["decoder segmentation"]["agreement"] == 1.0
    assert results["encoder segmentation"]["agreement"] == 1.0


@pytest.mark.parametrize("selection", ["enc_labels", "dec_labels", "boundary_mask", "interior_mask"])
def test_ssync_merged_labels_and_selected_patches_equal_theirs(results, selection):
    assert results[f"SSync {selection}"]["agreement"] == 1.0


@pytest.mark.parametrize("term", ["reconstruction", "slot_contrast", "ssync_boundary", "ssync_interior", "total"])
def test_one_training_step_gives_their_loss_terms(results, term):
    assert results[f"loss {term}"]["relative"] <= 1e-5, results[f"loss {term}"]


def test_every_gradient_equals_their_float64_gradient_within_1e5_of_its_scale(results):
    gradients = {k: v for k, v in results.items() if k.startswith("gradient ")}
    assert len(gradients) == 45  # every trainable tensor of theirs
    name, worst = max(gradients.items(), key=lambda item: item[1]["ours_vs_exact"])
    assert worst["ours_vs_exact"] <= 1e-5, (name, worst)


def test_every_gradient_equals_theirs_within_1e4_unless_their_float32_rounding_is_further_off(results):
    # The decoder's position-embedding gradient is a sum over slots that nearly cancels (the alpha
    # masks' gradients sum to zero over slots): their float32 code, which forms it per slot and patch,
    # lands 6.5e-4 of its scale from their own float64 answer; ours sums before the product (the
    # MLP's first layer split per slot and per patch) and lands within 1e-5 of it.
    for name, values in results.items():
        if name.startswith("gradient ") and values["relative"] > 1e-4:
            assert values["theirs_vs_exact"] > 10 * values["ours_vs_exact"], (name, values)
            assert values["relative"] <= 2 * values["theirs_vs_exact"], (name, values)


def test_input_transform_and_label_resize_equal_theirs(results):
    assert results["input transform (video)"]["max_abs"] <= 2e-5  # ImageNet-normalised units
    assert results["input transform (labels)"]["agreement"] == 1.0


@pytest.mark.parametrize("name", ["video_fg_ari", "image_fg_ari", "video_mbo", "image_mbo"])
@pytest.mark.parametrize("prefix", ["", "enc_"])
def test_evaluation_gives_their_validation_metrics(results, prefix, name):
    # The metrics score the argmax of the maps resized to the labels' size, where a pixel near a tie
    # between two slots can take either with the CPU's float rounding: on an AVX2-only AMD EPYC our
    # video mBO is 1.3e-4 from theirs (8e-6 absolute; within 1e-4 on the AVX-512 CPUs of earlier
    # days). A wrong protocol or resize moves these scores by percents.
    assert results[f"metric {prefix}{name}"]["relative"] <= 5e-4, results[f"metric {prefix}{name}"]


@pytest.mark.parametrize(
    "name", ["video_fg_ari", "image_fg_ari", "video_mbo", "image_mbo", "video_miou", "image_miou"]
)
def test_metrics_equal_theirs_on_ids_with_empty_frames(results, name):
    assert results[f"metric case {name}"]["relative"] <= 1e-6, results[f"metric case {name}"]


def test_skipping_frames_without_objects_is_not_their_image_fg_ari(reference):
    config = movi_c.get_config()
    config.eval.fg_ari_without_foreground = "skip"
    ours = compare_authors._metric_case(reference, config)["metric case image_fg_ari"]
    assert ours["relative"] > 1e-3  # The case has a frame and a video without objects.


@pytest.fixture(scope="module")
def fresh_init():
    """Our torch-style initialisation of the full MOVi-C model, in their names."""
    config = movi_c.get_config().model
    model = build_model(config)
    video = jnp.zeros((1, 1, *config.image_size, 3))
    params = jax.jit(model.init)(jax.random.key(0), video)["params"]
    del params["encoder"]["backbone"]
    return flax_to_authors(jax.device_get(params), config.predictor.num_blocks, len(config.decoder.hidden_sizes) + 1)


def test_torch_init_draws_every_trainable_tensor_from_their_distribution(reference, fresh_init):
    theirs = json.loads(str(reference["init_stats_json"]))
    assert set(theirs) == set(fresh_init)
    for name, (their_mean, their_std, their_max, size) in theirs.items():
        ours = fresh_init[name]
        assert ours.size == size, name
        if "gru.bias" in name:
            continue  # folded, below
        if their_std == 0:  # LayerNorm ones / zeros, zero biases
            np.testing.assert_array_equal(ours, their_mean, err_msg=name)
            continue
        tolerance = 5 / np.sqrt(size)  # ~5 standard errors of a sample std
        assert abs(ours.std() / their_std - 1) < tolerance, (name, ours.std(), their_std)
        assert abs(ours.mean() - their_mean) < 6 * their_std / np.sqrt(size), name
        assert np.abs(ours).max() <= their_max * (1 + tolerance), name


def test_torch_init_of_the_gru_biases_is_their_two_biases_summed(reference, fresh_init):
    theirs = json.loads(str(reference["init_stats_json"]))
    bound = 64**-0.5
    _, std, their_max, _ = theirs["processor.module.corrector.gru.bias_ih"]
    assert their_max <= bound and abs(std / (bound / np.sqrt(3)) - 1) < 0.15  # theirs: U(±1/√64)
    folded = fresh_init["processor.module.corrector.gru.bias_ih"][:128]  # reset, update: b_ih + b_hh
    candidate = fresh_init["processor.module.corrector.gru.bias_ih"][128:]  # b_in alone
    assert np.abs(folded).max() <= 2 * bound and np.abs(folded).max() > bound
    assert abs(folded.std() / (np.sqrt(2) * bound / np.sqrt(3)) - 1) < 0.2
    assert np.abs(candidate).max() <= bound


def test_export_round_trip_gives_their_state_dict(reference):
    state = reference["state"]
    params, unused = authors_to_flax(state)
    exported = flax_to_authors(params)
    assert unused == [] and set(exported) == set(state)
    gru = "processor.module.corrector.gru."
    for name, value in state.items():
        if name not in (gru + "bias_ih", gru + "bias_hh"):
            np.testing.assert_array_equal(exported[name], value, err_msg=name)
    # The reset and update gates' two biases only act as their sum, which is kept.
    np.testing.assert_allclose(
        exported[gru + "bias_ih"] + exported[gru + "bias_hh"], state[gru + "bias_ih"] + state[gru + "bias_hh"], rtol=1e-6
    )
    np.testing.assert_array_equal(exported[gru + "bias_hh"][128:], state[gru + "bias_hh"][128:])


def test_torch_multihead_attention_names_import_like_theirs(reference):
    state = dict(reference["state"])
    block = "processor.module.predictor.blocks.0.self_attn."
    state[block + "in_proj_weight"] = state.pop(block + "qkv.weight")
    state[block + "in_proj_bias"] = state.pop(block + "qkv.bias")
    params, unused = authors_to_flax(state)
    assert unused == []
    np.testing.assert_array_equal(
        params["processor"]["predictor"]["block_0_attn"]["qkv"]["kernel"], reference["state"][block + "qkv.weight"].T
    )


def test_missing_key_names_the_key(reference):
    state = dict(reference["state"])
    del state["processor.module.corrector.to_q.weight"]
    with pytest.raises(KeyError, match="processor.module.corrector.to_q.weight"):
        authors_to_flax(state)


def test_unknown_keys_are_reported_not_silently_dropped(reference):
    state = dict(reference["state"], **{"loss_fns.contrastive.temperature": np.ones(())})
    _, unused = authors_to_flax(state)
    assert unused == ["loss_fns.contrastive.temperature"]


def test_import_cli_writes_an_orbax_checkpoint_that_restores_the_mapped_params(reference, tmp_path):
    config = authors_case.case_config(movi_c.get_config(), reference["case"])
    ckpt = tmp_path / "ssync_movi_c.npz"
    np.savez(ckpt, **{f"model.{k}": v for k, v in reference["state"].items()})  # Lightning's prefix
    out = tmp_path / "imported"
    assert import_checkpoint(ckpt, config.model, out) == []
    restored = ocp.StandardCheckpointer().restore(out)["params"]
    expected, _ = convert(reference["state"], config.model)
    jax.tree.map(np.testing.assert_array_equal, restored, expected)
    with pytest.raises(FileExistsError, match="already exists"):
        import_checkpoint(ckpt, config.model, out)


def test_checkpoint_for_another_slot_count_is_rejected_with_the_shapes(reference):
    config = authors_case.case_config(movi_c.get_config(), reference["case"])
    config.model.num_slots = 7
    with pytest.raises(ValueError, match=r"checkpoint \(11, 64\) vs config \(7, 64\)"):
        convert(reference["state"], config.model)


def test_export_tool_writes_their_state_dict_from_an_imported_checkpoint(reference, tmp_path):
    from ssync_jax import inference
    from ssync_jax.models.state_dict_io import read_state_dict
    from ssync_jax.tools.export_torch_checkpoint import export

    config = authors_case.case_config(movi_c.get_config(), reference["case"])
    np.savez(tmp_path / "theirs.npz", **reference["state"])
    import_checkpoint(tmp_path / "theirs.npz", config.model, tmp_path / "imported")
    predictor = inference.load(tmp_path / "imported", config=config)
    out = str(tmp_path / "exported.safetensors")
    export(predictor.params, config.model, out)
    exported = read_state_dict(out)
    assert set(exported) == set(reference["state"])
    gru_biases = {"processor.module.corrector.gru.bias_ih", "processor.module.corrector.gru.bias_hh"}
    for name in set(exported) - gru_biases:  # the GRU's summed biases: test_export_round_trip_...
        np.testing.assert_array_equal(exported[name], reference["state"][name], err_msg=name)
    with pytest.raises(FileExistsError, match="already exists"):
        export(predictor.params, config.model, out)
