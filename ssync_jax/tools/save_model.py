r"""A trained run as a model directory: its params, config and results in three small files.

    python -m ssync_jax.tools.save_model --workdir workdirs/synthetic --out my_model [--step N]
    python -m ssync_jax.tools.predict --model my_model --input video.mp4 --out predictions

The directory (`ssync_jax.checkpoints.write_model_dir`) holds `params.safetensors`, the run's
`config.json`, and `model.json` with the step, the workdir's last evaluation (`eval_metrics.json`),
its test metrics when there are some (`test_metrics.json`, as `benchmarks.learning` writes them, or
`--test_metrics FILE`), `--note`, and with `--check_split test` the saved params' metrics on that
split of the run's own dataset (`check`: what `tests/test_shipped_model.py` recomputes, so a shipped
model that no longer gives its figures fails the suite). It is what ships with the package as the default's trained
model (ssync_jax/pretrained/default, loaded by `inference.load()` with no argument); a directory
that exists is never overwritten.
"""

from ssync_jax import cli  # First: it quiets TensorFlow before anything loads it.

import datetime
import json
import os

import jax
from absl import app, flags

from ssync_jax import checkpoints, errors, evaluate, paths, sharding


def save_model(
    workdir: str, out: str, step: int | None, test_metrics: str | None, note: str, check_split: str | None = None
) -> dict:
    """Writes the model directory of `workdir`'s checkpoint `step` (latest: None); returns its model.json.

    `check_split`: also evaluate the params on that split of the run's dataset (`ssync_jax.evaluate`,
    the run's own evaluation settings) and record the metrics as `check`.
    """
    workdir = paths.absolute(workdir)
    mesh = sharding.make_mesh(jax.local_devices()[:1])
    config = checkpoints.read_config(workdir)  # First: a folder without one is named as no main.py run.
    model, params, config, step = checkpoints.load_model(workdir, config, step, mesh)
    info = {"step": step, "saved": datetime.date.today().isoformat(), "note": note}
    evaluation = os.path.join(workdir, checkpoints.EVAL_JSON)
    if os.path.exists(evaluation):
        with open(evaluation) as file:
            info["last_evaluation"] = json.load(file)
    test_metrics = test_metrics or os.path.join(workdir, "test_metrics.json")
    if os.path.exists(test_metrics):
        with open(test_metrics) as file:
            info["test_metrics"] = json.load(file)
    if check_split:
        check_config = config.copy_and_resolve_references()
        check_config.data.eval_split = check_split
        metrics = evaluate.Evaluator(model, check_config, mesh).evaluate(params, evaluate.evaluation_dataset(check_config))
        info["check"] = {"dataset": config.data.name, "split": check_split, "metrics": metrics}
    checkpoints.write_model_dir(out, config, jax.device_get(params), info)
    return info


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    paths.check_new_folder(options.out, "--out")  # Before the checkpoint loads.
    if options.test_metrics and not os.path.isfile(options.test_metrics):
        raise errors.InputNotFoundError(f"--test_metrics {options.test_metrics}: no such file.")
    info = save_model(options.workdir, options.out, options.step, options.test_metrics, options.note, options.check_split)
    size = sum(os.path.getsize(os.path.join(options.out, name)) for name in os.listdir(options.out))
    print(f"Step {info['step']} of {options.workdir} -> {os.path.abspath(options.out)} ({size / 2**20:.2f} MiB)")


if __name__ == "__main__":
    cli.DEFINE_path("workdir", None, "Training workdir (holds config.json and checkpoints/).")
    cli.DEFINE_path("out", None, "The model directory to create (must not exist or be empty).")
    flags.DEFINE_integer("step", None, "Checkpoint step; default the latest.")
    cli.DEFINE_path("test_metrics", None, "A JSON of test metrics; default WORKDIR/test_metrics.json if there.")
    flags.DEFINE_string("check_split", None, "Also record the params' metrics on this split of the run's dataset.")
    flags.DEFINE_string("note", "", "What the model is and how it was trained (recorded in model.json).")
    flags.mark_flags_as_required(["workdir", "out"])
    cli.run(main)
