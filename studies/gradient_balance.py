r"""Which loss term drives the update: each term's gradient per module, and its share of the clipped step.

    python -m studies.gradient_balance --source ssync_jax/pretrained/default           # the trained 8x8 default
    python -m studies.gradient_balance --source W --step 4500                          # a workdir's checkpoint
    python -m studies.gradient_balance --config studies/configs/synthetic16_features.py:ssync \
        --config.model.encoder.backbone_from=W                                            # a config at initialisation
    python -m studies.gradient_balance --config configs/movi_c.py --authors_case movi_c   # the authors' case
    python -m studies.gradient_balance --from_json A.json,B.json         # one summary row per earlier --json

For a model (a training workdir at `--step`, a model directory, or a config's fresh initialisation
with `--config`) and `--batches` training batches of its own data, each loss term's gradient is
taken alone, as it enters the total loss (its weight times its gradient), with SSync switched on: a
model trained without SSync gets the paper's two SSync terms (weight 1 each, its `config.ssync`) as
`:ssync` would add them. Printed per term, averaged over the batches: its value (unweighted), the
L2 norm of its weighted gradient over each module (backbone, feature MLP = the encoder's output
transform and grid position embedding, slot attention, predictor, slot initialiser, decoder) and over
all trainable parameters, and its share of the clipped update,

    share_i = <g_i, g> / |g|²,  g = Σ_i g_i over the trainable parameters,

the part of the update's direction that is term i's (the shares sum to 1; a negative share pulls
against the others). The global-norm clip scales every term alike, by min(1, clip / |g|), also
printed; Adam then rescales per parameter, so the shares say who sets the direction of the clipped
gradient, not each parameter's step. A frozen backbone's column is what its gradient would be (zero:
the model stops it).

`--authors_case small|movi_c` instead takes the authors' random-weight comparison case
(`ssync_jax.tools.authors_case`: their MOVi-C model's state drawn from a seed, a video of moving
ellipses) through `--config` (configs/movi_c.py) at that case's sizes, with the case's global step
(SSync on): "small" is the committed fixture's (112², decoder 3 x 256), "movi_c" the paper's shape
(336², decoder 3 x 1024; their state's names and order from the fixture, the shapes from ours). It is
at initialisation, with a random DINOv2: the only MOVi-C point measurable without the weights.
"""

from ssync_jax import cli  # First: it quiets TensorFlow before anything loads it.

import json
import os
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import flags
from flax import traverse_util
from ml_collections import config_flags

from ssync_jax import decoder_targets, errors, inference, sharding, train, train_state
from ssync_jax.data import pipeline, training
from ssync_jax.models import build_model, trainable_mask
from ssync_jax.models.authors_checkpoint import flax_to_authors
from ssync_jax.objectives import total_loss
from ssync_jax.tools import authors_case
from ssync_jax.tools.import_torch_checkpoint import convert

# Parameter groups by path prefix: the first that matches names the module.
MODULES = (
    ("backbone", ("encoder", "backbone")),
    ("feature MLP", ("encoder",)),
    ("slot attention", ("processor", "corrector")),
    ("predictor", ("processor", "predictor")),
    ("initialiser", ("initializer",)),
    ("decoder", ("decoder",)),
)
SSYNC_TERMS = ("ssync_boundary", "ssync_interior")
FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fixtures",
                       "authors_movi_c_small.npz")  # fmt: skip


def module_of(path: tuple[str, ...]) -> str:
    """The module a parameter path belongs to (`MODULES`)."""
    for name, prefix in MODULES:
        if path[: len(prefix)] == prefix:
            return name
    raise ValueError(f"parameter {'/'.join(path)} belongs to no module of {[name for name, _ in MODULES]}")


def with_ssync_terms(losses: ml_collections.ConfigDict) -> dict:
    """`config.losses` as a dict, with the paper's SSync terms (weight 1) added where absent."""
    losses = losses.to_dict()
    for name in SSYNC_TERMS:
        losses.setdefault(name, {"weight": 1.0, "warmup_fraction": 0.3})
    return losses


def balance(model, params, config: ml_collections.ConfigDict, batches: list[Mapping[str, np.ndarray]], step: int,
            total_steps: int) -> dict:  # fmt: skip
    """Each term's value, weighted gradient norms per module and overall, and share of the update.

    Args:
        model: the video model.
        params: its params.
        config: its config (`losses`, `ssync`, `loss_group_size`, `model`, `optimizer.grad_clip_norm`).
        batches: model inputs ("video", and "boxes" / a per-pixel target field if the model reads them).
        step, total_steps: the step the objective sees (every term active at it) and the schedule's length.

    Returns:
        {"terms": {term: {"value", "weight", "norm", "share", "modules": {module: norm}}}, "total_norm",
        "clip_scale"}, each the mean over the batches.
    """
    losses = with_ssync_terms(config.losses)
    loss_fn = total_loss.build_loss_fn(losses, config.ssync.to_dict(), config.loss_group_size)
    names = list(losses)
    weights = jnp.asarray([losses[name].get("weight", 1.0) for name in names], jnp.float32)
    mask = traverse_util.flatten_dict(trainable_mask(params, config.model))
    paths = [path for path in traverse_util.flatten_dict(params) if mask[path]]
    target_field = decoder_targets.get(model.target).field
    target_field = None if target_field == "video" else target_field  # The model reads the frames itself.

    @jax.jit
    def term_gradients(params, batch, selection):
        def objective(p):
            outputs = model.apply(
                {"params": p}, batch["video"], batch.get("boxes"), field=batch.get(target_field) if target_field else None,
                rngs={"slots": jax.random.key(config.seed)},
            )  # fmt: skip
            _, terms, _ = loss_fn(outputs, step, total_steps)
            values = jnp.stack([terms[name] for name in names])
            return jnp.sum(selection * weights * values), values

        grads, values = jax.grad(objective, has_aux=True)(params)
        flat = traverse_util.flatten_dict(grads)
        return [flat[path].astype(jnp.float32) for path in paths], values

    sums = {"total_norm": 0.0, "clip_scale": 0.0}
    per_term = {name: {"value": 0.0, "norm": 0.0, "share": 0.0, "modules": {m: 0.0 for m, _ in MODULES}} for name in names}
    for batch in batches:
        gradients = {}
        for index, name in enumerate(names):
            leaves, values = term_gradients(params, batch, jax.nn.one_hot(index, len(names)))
            gradients[name] = [np.asarray(leaf, np.float64) for leaf in leaves]
            per_term[name]["value"] += float(values[index]) / len(batches)
        total = [sum(gradients[name][i] for name in names) for i in range(len(paths))]
        total_squared = sum(float(np.sum(leaf**2)) for leaf in total)
        sums["total_norm"] += total_squared**0.5 / len(batches)
        sums["clip_scale"] += min(1.0, config.optimizer.grad_clip_norm / max(total_squared**0.5, 1e-30)) / len(batches)
        for name in names:
            entry = per_term[name]
            squares = {m: 0.0 for m, _ in MODULES}
            for path, leaf in zip(paths, gradients[name]):
                squares[module_of(path)] += float(np.sum(leaf**2))
            for module, square in squares.items():
                entry["modules"][module] += square**0.5 / len(batches)
            entry["norm"] += sum(squares.values()) ** 0.5 / len(batches)
            dot = sum(float(np.sum(leaf * whole)) for leaf, whole in zip(gradients[name], total))
            entry["share"] += dot / max(total_squared, 1e-30) / len(batches)
    for name, weight in zip(names, np.asarray(weights)):
        per_term[name]["weight"] = float(weight)
    # Modules with no trainable parameter (a frozen backbone): their gradient is not computed.
    trained = {module_of(path) for path in paths}
    for entry in per_term.values():
        entry["modules"] = {m: (v if m in trained else None) for m, v in entry["modules"].items()}
    return {"terms": per_term, **sums}


def training_batches(config: ml_collections.ConfigDict, count: int) -> list[dict[str, np.ndarray]]:
    """The first `count` training batches of the config's data, as training reads them (the keys the
    train step reads only)."""
    iterator = training.training_batches(config, sharding.make_mesh(jax.devices()[:1]), images=False).batches
    try:
        return [{k: v for k, v in next(iterator).items() if k in train_state.BATCH_KEYS} for _ in range(count)]
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def authors_case_model(config: ml_collections.ConfigDict, name: str):
    """(model, params, config, batch) of the authors' random-weight comparison case `name`."""
    with np.load(FIXTURE) as fixture:
        names = [str(n) for n in fixture["state_names"]]  # Their state dict's order (the draw's order).
    case = dict(authors_case.CASES[name], name=name)
    config = authors_case.case_config(config, case)
    model = build_model(config.model)
    # Their tensors' shapes at this case's sizes: our params' shapes in their layout.
    shapes = jax.eval_shape(
        lambda v: model.init(jax.random.key(0), v), jax.ShapeDtypeStruct((1, 1, *config.model.image_size, 3), jnp.float32)
    )["params"]
    layout = flax_to_authors(
        jax.tree.map(lambda s: np.zeros(s.shape, np.float32), shapes),
        config.model.predictor.num_blocks,
        len(config.model.decoder.hidden_sizes) + 1,
    )
    missing = sorted(set(layout) - set(names))
    if missing:
        raise errors.ConfigError(f"the fixture's state names lack {missing[:3]}; regenerate it")
    state = authors_case.random_state([(n, layout[n].shape) for n in names if n in layout], case["seed"])
    params, _ = convert(state, config.model)
    source_video, source_ids = authors_case.random_video(case)
    batch = next(iter(pipeline.eval_dataset(
        [{"video": video, "segmentations": ids[..., None]} for video, ids in zip(source_video, source_ids)], image_size=config.data.image_size,
        global_batch_size=case["batch"], normalization=config.data.normalization, bicubic=config.data.bicubic,
        eval_resolution=config.data.eval_resolution, process_index=0, process_count=1,
    )))  # fmt: skip
    return model, params, config, {"video": batch["video"]}, case


def format_table(result: dict, title: str) -> str:
    modules = [m for m, _ in MODULES]
    lines = [f"## {title}", "",
             "| term | value | weight | " + " | ".join(f"‖g‖ {m}" for m in modules) + " | ‖g‖ all | share of update |",
             "|---|---:|---:|" + "---:|" * (len(modules) + 2)]  # fmt: skip
    for name, entry in result["terms"].items():
        cells = " | ".join("–" if entry["modules"][m] is None else f"{entry['modules'][m]:.3g}" for m in modules)
        lines.append(f"| {name} | {entry['value']:.4g} | {entry['weight']:g} | {cells} | {entry['norm']:.3g} | "
                     f"{entry['share']:.2f} |")  # fmt: skip
    ssync = sum(result["terms"][n]["value"] * result["terms"][n]["weight"] for n in SSYNC_TERMS)
    entry = result["terms"].get("reconstruction", {"value": float("nan"), "weight": 1.0})
    reconstruction = entry["value"] * entry["weight"]
    lines += ["", f"‖Σ g‖ = {result['total_norm']:.3g}; the clip ({result['clip']:g}) scales it by "
              f"{result['clip_scale']:.3g}; weighted reconstruction / (boundary + interior) in value = {reconstruction / ssync:.2f}"]  # fmt: skip
    return "\n".join(lines)


def summary_table(results: list[dict]) -> str:
    """One row per model (the `--json` files): term values, the loss balance, gradient norms and shares."""
    terms = ("reconstruction", "slot_contrast", *SSYNC_TERMS)
    short = {"reconstruction": "rec", "slot_contrast": "SC", "ssync_boundary": "bd", "ssync_interior": "int"}
    lines = ["| model | rec value (weighted) | bd + int value | rec ÷ (bd + int) | " + " | ".join(f"‖g‖ {short[t]}" for t in terms)
             + " | ‖Σ g‖ | clip scale | shares " + " / ".join(short[t] for t in terms) + " |",
             "|---|---:|---:|---:|" + "---:|" * (len(terms) + 2) + "---|"]  # fmt: skip
    for result in results:
        entries = result["terms"]
        reconstruction = entries["reconstruction"]["value"] * entries["reconstruction"]["weight"]
        ssync = sum(entries[t]["value"] * entries[t]["weight"] for t in SSYNC_TERMS)
        norms = " | ".join(f"{entries[t]['norm']:.3g}" if t in entries else "–" for t in terms)
        shares = " / ".join(f"{entries[t]['share']:.2f}" if t in entries else "–" for t in terms)
        lines.append(f"| {result['title']} | {reconstruction:.4g} | {ssync:.4g} | {reconstruction / ssync:.2f} | {norms} | "
                     f"{result['total_norm']:.3g} | {result['clip_scale']:.3g} | {shares} |")  # fmt: skip
    return "\n".join(lines)


def main(argv):
    del argv
    options = flags.FLAGS
    if options.from_json:
        results = []
        for path in options.from_json:
            with open(path) as file:
                results.append(json.load(file))
        print(summary_table(results))
        return
    if options.authors_case and options.config is None:
        raise errors.ConfigError("--authors_case runs through a config: add --config configs/movi_c.py")
    if options.source is None and options.config is None:
        raise errors.ConfigError("give --source (a workdir or model directory) or --config (its initialisation)")
    if options.authors_case:
        model, params, config, batch, case = authors_case_model(options.config, options.authors_case)
        batches, step, total = [batch], case["global_step"], case["max_steps"]
        title = (f"{config_flags.get_config_filename(flags.FLAGS['config'])}, the authors' case {options.authors_case!r} "
                 f"({case['image_size']}², decoder {case['decoder_hidden']}): at initialisation, random DINOv2")  # fmt: skip
    else:
        if options.source is not None:
            predictor = inference.load(options.source, options.step, options.config)
            model, params, config = predictor.model, predictor.params, predictor.config
            title = options.source + (f" at step {options.step}" if options.step is not None else "")
        else:
            config = options.config
            model = build_model(config.model)
            layout = train_state.state_layout(model, config, sharding.make_mesh(jax.devices()[:1]))
            params = train.initial_state(config, layout.init_state, layout.shardings).params
            title = f"{config_flags.get_config_filename(flags.FLAGS['config'])} at initialisation"
        batches = training_batches(config, options.batches)
        step = total = config.num_train_steps  # Every term active.
    result = balance(model, params, config, batches, step, total)
    result["clip"] = config.optimizer.grad_clip_norm
    print(format_table(result, f"{title}; {len(batches)} training batch(es)"))
    if options.json:
        with open(options.json, "w") as file:
            json.dump({"title": title, **result}, file, indent=1)


if __name__ == "__main__":
    config_flags.DEFINE_config_file("config", None, "A config at initialisation, or the config of --authors_case.")
    flags.DEFINE_string("source", None, "A training workdir, model directory, or orbax params checkpoint (with --config).")
    flags.DEFINE_integer("step", None, "The workdir's checkpoint (default: the latest).")
    flags.DEFINE_enum("authors_case", None, sorted(authors_case.CASES), "The authors' random-weight case, via --config.")
    flags.DEFINE_integer("batches", 4, "Training batches averaged over.")
    flags.DEFINE_string("json", None, "Also write the figures to this JSON file.")
    flags.DEFINE_list("from_json", None, "Comma-separated JSON files an earlier --json wrote: one summary row each; runs nothing.")
    cli.run(main)
