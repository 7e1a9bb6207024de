r"""Our model against the authors' PyTorch code on one case: same weights, same video, every output.

    python -m ssync_jax.tools.compare_authors --reference tests/fixtures/authors_movi_c_small.npz
    python -m ssync_jax.tools.compare_authors --reference $OUT/authors_movi_c.npz   # the MOVi-C shape

The reference file is what their code computed (`tests/fixtures/make_authors_fixture.py`, run in a
torch virtualenv with their repository). Here their state dict is rebuilt from the same seed
(`ssync_jax.tools.authors_case`), imported as a user's checkpoint would be
(`ssync_jax.tools.import_torch_checkpoint.convert`), and run through `configs/movi_c.py`'s model,
objective and evaluation at the case's sizes. Printed: for each quantity, the largest absolute
difference and that relative to their largest magnitude; for hard masks and labels, the fraction of
patches that agree; for losses and metrics, both values.

A reference written with `--float64` (their model in float64 throughout) is compared with ours in
float64 too: then the differences measure the two codes, not float32 rounding. `--exact REF64.npz`
(such a reference of the same case) measures both float32 sides' gradients against their float64
ones: where a gradient is a near-cancelling sum, it says which side's rounding is off.

`--write_state OUT.npz` writes the case's state dict (their key layout, their model's random
weights) as a checkpoint file instead, for the tools that take one (`import_torch_checkpoint`):

    python -m ssync_jax.tools.compare_authors --reference tests/fixtures/authors_movi_c_small.npz \
        --write_state $OUT/their_state.npz
"""

from ssync_jax import cli  # First: it quiets TensorFlow before anything loads it.

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import flags

from ssync_jax import errors, evaluate, rollout
from ssync_jax.data import pipeline
from ssync_jax.models import build_model
from ssync_jax.models.authors_checkpoint import flax_to_authors
from ssync_jax.objectives import ssync, total_loss
from ssync_jax.tools import authors_case
from ssync_jax.tools.import_torch_checkpoint import convert

# Their loss names (configs/SSync/movi_c.yaml) and ours.
LOSS_NAMES = {
    "loss_featrec": "reconstruction",
    "loss_ss": "slot_contrast",
    "loss_grp2deccls": "ssync_boundary",
    "loss_dec2grpcls": "ssync_interior",
}


def load_reference(path: str) -> dict[str, Any]:
    """The reference arrays, the case, and their state dict rebuilt from the case's seed."""
    with np.load(path) as data:
        reference = {key: data[key] for key in data.files}
    reference["case"] = json.loads(str(reference.pop("case_json")))
    shapes = json.loads(str(reference.pop("state_shapes_json")))
    names_shapes = list(zip([str(n) for n in reference.pop("state_names")], map(tuple, shapes)))
    reference["state"] = authors_case.random_state(names_shapes, reference["case"]["seed"])
    return reference


def _difference(ours: np.ndarray, theirs: np.ndarray) -> dict[str, float]:
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if ours.shape != theirs.shape:
        raise errors.ConfigError(f"shapes differ: ours {ours.shape}, theirs {theirs.shape}")
    max_abs = float(np.max(np.abs(ours - theirs)))
    return {"max_abs": max_abs, "relative": max_abs / max(float(np.max(np.abs(theirs))), 1e-30)}


def compare(
    reference: Mapping[str, Any],
    config: ml_collections.ConfigDict,
    float64_gradients: bool = False,
    exact_gradients: Mapping[str, np.ndarray] | None = None,
) -> dict[str, dict[str, float]]:
    """Every comparison of our model with the reference (see the module docstring).

    Args:
        reference: from `load_reference`.
        config: the experiment config to check (configs/movi_c.py), before `case_config`.
        float64_gradients: also compute our gradients in float64 (needs `jax_enable_x64`) and
            report how far each float32 side is from them: where a gradient is a near-cancelling
            sum, float32 rounding alone separates the two codes.
        exact_gradients: their gradients of the same case computed in float64 ({name: array}, from
            `load_exact_gradients`): each side's gradient is also measured against them
            ("ours_vs_exact", "theirs_vs_exact", relative to the exact gradient's largest magnitude).

    Returns:
        {quantity: {"max_abs", "relative"} | {"agreement"} | {"ours", "theirs", "relative"}}.
    """
    case = reference["case"]
    config = authors_case.case_config(config, case)
    in_float64 = reference["video"].dtype == np.float64
    if in_float64 and not jax.config.jax_enable_x64:
        raise errors.ConfigError("the reference was computed in float64: enable jax_enable_x64 (main() does)")
    model = _float64(config, build_model) if in_float64 else build_model(config.model)
    params, _ = convert(reference["state"], config.model)
    if in_float64:
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params)
    video = jnp.asarray(reference["video"].transpose(0, 1, 3, 4, 2))  # [B, T, H, W, 3]
    outputs = jax.jit(lambda p, v: model.apply({"params": p}, v))(params, video)
    on_grids = jax.device_get(outputs)
    flat = {k: v.reshape(*v.shape[:2], -1, v.shape[-1]) for k, v in on_grids.items() if k.startswith(("enc_", "dec_"))}
    outputs = {**on_grids, **flat}  # maps [B, T, h, w, S] -> [B, T, N, S], as theirs
    to_slots_first = (0, 1, 3, 2)  # ours [B, T, N, S] -> theirs [B, T, S, N]
    results = {
        "slots": _difference(outputs["slots"], reference["slots"]),
        "encoder logits": _difference(outputs["enc_logits"].transpose(to_slots_first), reference["dots"]),
        "encoder attention": _difference(outputs["enc_attn"].transpose(to_slots_first), reference["attn"]),
        "decoder alpha logits": _difference(outputs["dec_logits"].transpose(to_slots_first), reference["alpha"]),
        "decoder masks": _difference(outputs["dec_masks"].transpose(to_slots_first), reference["masks"]),
        "reconstruction": _difference(outputs["reconstruction"], reference["reconstruction"]),
        "backbone features": _difference(outputs["target"], reference["features"]),
        "decoder segmentation": {
            "agreement": float(np.mean(outputs["dec_masks"].argmax(-1) == reference["masks"].argmax(2)))
        },
        "encoder segmentation": {
            "agreement": float(np.mean(outputs["enc_attn"].argmax(-1) == reference["attn"].argmax(2)))
        },
    }
    pseudo = jax.device_get(ssync.labels_of_maps(on_grids["enc_logits"], on_grids["dec_logits"], **config.ssync)[0])
    for ours, theirs in (
        ("enc_labels", "merged_grp_labels"),
        ("dec_labels", "merged_dec_labels"),
        ("boundary_mask", "is_boundary"),
        ("interior_mask", "is_not_boundary"),
    ):
        results[f"SSync {ours}"] = {"agreement": float(np.mean(getattr(pseudo, ours) == reference[theirs]))}

    loss_fn = total_loss.build_loss_fn(config.losses, config.ssync, config.loss_group_size)
    (total, terms), grads = _loss_and_gradients(model, loss_fn, params, video, case)
    for theirs, ours in LOSS_NAMES.items():
        results[f"loss {ours}"] = _values(terms[ours], reference[f"loss/{theirs}"])
    results["loss total"] = _values(total, reference["loss/total"])
    exported = _exported(grads, config)
    # Reference gradients each side is also measured against, by the label of the result's keys.
    references = {}
    if float64_gradients and not in_float64:
        references["float64"] = _exported(
            _loss_and_gradients(
                _float64(config, build_model), loss_fn, jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params),
                video.astype(jnp.float64), case,
            )[1],
            config,
        )
    if exact_gradients is not None:
        references["exact"] = exact_gradients
    for name in sorted(k[len("grad/") :] for k in reference if k.startswith("grad/")):
        theirs = reference["grad/" + name]
        results[f"gradient {name}"] = _difference(exported[name], theirs)
        for label, gradients in references.items():
            results[f"gradient {name}"][f"ours_vs_{label}"] = _difference(exported[name], gradients[name])["relative"]
            results[f"gradient {name}"][f"theirs_vs_{label}"] = _difference(theirs, gradients[name])["relative"]
    results.update(_evaluation(reference, config, on_grids))
    results.update(_metric_case(reference, config))
    return results


# Their validation metric names (configs/SSync/movi_c.yaml) and ours.
METRIC_NAMES = {"ari": "video_fg_ari", "image_ari": "image_fg_ari", "mbo": "video_mbo", "image_mbo": "image_mbo"}


def _evaluation(reference, config, maps) -> dict[str, dict[str, float]]:
    """Their input transform and validation metrics against our pipeline and evaluation on the case."""
    case = reference["case"]
    source = [
        {"video": video, "segmentations": ids[..., None]}
        for video, ids in zip(reference["source_video"], reference["source_ids"])
    ]
    batch = next(
        iter(
            pipeline.eval_dataset(
                source,
                image_size=config.data.image_size,
                global_batch_size=case["batch"],
                normalization=config.data.normalization,
                bicubic=config.data.bicubic,
                eval_resolution=config.data.eval_resolution,
                process_index=0,
                process_count=1,
            )
        )
    )
    results = {
        "input transform (video)": _difference(batch["video"], reference["video"].transpose(0, 1, 3, 4, 2)),
        "input transform (labels)": {"agreement": float(np.mean(batch["segmentations"] == reference["true_ids"]))},
    }
    label_size = batch["segmentations"].shape[2:4]
    predictions = rollout.segment(maps["dec_masks"], maps["enc_attn"], tuple(label_size))
    scores_fn = evaluate.protocol_scores(evaluate.config_protocol(config), case["num_classes"], case["num_slots"])
    scores = evaluate.batch_scores(scores_fn, batch["segmentations"], predictions, batch["valid"])
    for prefix in ("", "enc_"):
        for theirs, ours in METRIC_NAMES.items():
            values, valid = scores[prefix + ours], scores[prefix + ours + "_valid"]
            mean = float(np.sum(values * valid) / np.sum(valid))
            results[f"metric {prefix}{ours}"] = _values(mean, reference[f"metric/{prefix}{theirs}"])
    return results


def _metric_case(reference, config) -> dict[str, dict[str, float]]:
    """Their metrics on hand-made ids (frames and a video without objects) against ours."""
    true_ids = jnp.asarray(reference["metric_case/true_ids"], jnp.int32)
    pred_ids = jnp.asarray(reference["metric_case/pred_ids"], jnp.int32)
    _, _, num_true, num_pred = authors_case.metric_case()
    scores_fn = evaluate.protocol_scores(evaluate.config_protocol(config), num_true, num_pred)
    valid = jnp.ones(true_ids.shape[0], bool)
    scores = evaluate.batch_scores(scores_fn, true_ids, {"dec_ids": pred_ids, "enc_ids": pred_ids}, valid)
    results = {}
    for name in ("video_fg_ari", "image_fg_ari", "video_mbo", "image_mbo", "video_miou", "image_miou"):
        values, valid = scores[name], scores[name + "_valid"]
        mean = float(np.sum(values * valid) / np.sum(valid))
        results[f"metric case {name}"] = _values(mean, reference[f"metric_case/{name}"])
    return results


def _loss_and_gradients(model, loss_fn, params, video, case):
    def objective(p):
        total, terms, _ = loss_fn(model.apply({"params": p}, video), case["global_step"], case["max_steps"])
        return total, terms

    return jax.device_get(jax.jit(jax.value_and_grad(objective, has_aux=True))(params))


def _float64(config: ml_collections.ConfigDict, build) -> Any:
    """The same model computing in float64 throughout (needs `jax_enable_x64`)."""
    exact = config.copy_and_resolve_references()
    exact.model.dtype = exact.model.encoder.backbone_dtype = "float64"
    return build(exact.model)


def _exported(grads, config) -> dict[str, np.ndarray]:
    """Our gradients under their parameter names."""
    return flax_to_authors(
        grads, config.model.predictor.num_blocks, len(config.model.decoder.hidden_sizes) + 1, gradient=True
    )


def _values(ours, theirs) -> dict[str, float]:
    ours, theirs = float(ours), float(theirs)
    return {"ours": ours, "theirs": theirs, "relative": abs(ours - theirs) / max(abs(theirs), 1e-30)}


def load_exact_gradients(path: str, reference: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Their float64 gradients of the reference's case ({name: array}), from a file written with
    `make_authors_fixture.py --float64` (`--gradients_only` keeps just these)."""
    with np.load(path) as exact:
        case = json.loads(str(exact["case_json"]))
        if case != reference["case"]:
            raise errors.ConfigError(f"--exact {path} is of case {case.get('name')!r}, not the reference's; "
                                     "write it from the same case with --float64")
        return {key[len("grad/") :]: exact[key] for key in exact.files if key.startswith("grad/")}


def format_table(results: Mapping[str, Mapping[str, float]]) -> str:
    lines = [f"{'quantity':<44} comparison"]
    for name, values in results.items():
        shown = ", ".join(f"{k} {v:.3g}" for k, v in values.items())
        lines.append(f"{name:<44} {shown}")
    return "\n".join(lines)


def main(argv):
    del argv
    reference = load_reference(flags.FLAGS.reference)
    if flags.FLAGS.write_state:
        out = Path(flags.FLAGS.write_state)
        if out.exists():
            raise errors.WouldOverwriteError(f"--write_state {out} exists; name a new file")
        np.savez(out, **reference["state"])
        case = reference["case"]
        print(f"wrote their state dict of case {case['name']} to {out}: {case['image_size']}² input, "
              f"decoder {tuple(case['decoder_hidden'])}, {case['num_slots']} slots")
        return
    if flags.FLAGS.float64 or reference["video"].dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    print(f"case {reference['case']['name']}: {json.dumps(reference['case'])}")
    exact = load_exact_gradients(flags.FLAGS.exact, reference) if flags.FLAGS.exact else None
    print(format_table(compare(reference, flags.FLAGS.config, flags.FLAGS.float64, exact)))


if __name__ == "__main__":
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", "configs/movi_c.py", "The paper config whose model is compared.")
    cli.DEFINE_path("reference", None, "The .npz written by tests/fixtures/make_authors_fixture.py.", required=True)
    flags.DEFINE_bool("float64", False, "Also measure both sides' gradients against our float64 gradients.")
    cli.DEFINE_path("exact", None, "Their float64 gradients of the same case (make_authors_fixture.py "
                        "--float64): both sides' gradients are measured against them too.")
    cli.DEFINE_path("write_state", None, "Write the case's state dict (their layout) to this .npz and stop.")
    cli.run(main)
