r"""Every evaluation protocol in one table: the command line of `ssync_jax.evaluate`'s scorer.

    python -m ssync_jax.tools.score --split test             # the model shipped with the package
    python -m ssync_jax.tools.score --workdir workdirs/movi_c [--split test] [--protocols all] \
        [--out DIR] [--step N] [--data NAME]
    python -m ssync_jax.tools.score --params_checkpoint checkpoints/ssync_movi_c --config configs/movi_c.py \
        --config.data.data_dir ~/tensorflow_datasets --out results/ssync_movi_c

The model runs once over every evaluation video (`ssync_jax.evaluate.Evaluator`, as `python main.py
--mode eval` runs it); its decoder masks and its encoder's slot attention (columns prefixed `enc_`)
are then scored under each protocol (`ssync_jax.evaluate.PROTOCOLS`; its module docstring names the
code of each project each follows). Prints a line naming the model, split and videos, then markdown
tables (the protocols; the decoder's scores; the encoder's), and with --out writes them to
OUT/eval_protocols.json and .csv. Values are fractions in the files, percentages in the printed tables.
`--data NAME` scores the model on another dataset than its config's, e.g. a larger split of the same
generator (`synthetic_movi/a_32x32_8frames_validation1000`: its first 50 videos are the default's).

Columns: video FG-ARI, image FG-ARI (per frame), video ARI with the background, video and image mBO,
video and image Hungarian mIoU (`ssync_jax.metrics`).
"""

from ssync_jax import cli  # First: it quiets TensorFlow before anything loads it.

import csv
import math
import os
from collections.abc import Mapping, Sequence

import ml_collections
from absl import app, flags
from jax.sharding import Mesh

from ssync_jax import checkpoints, errors, evaluate, paths, sharding

COLUMNS = ("video_fg_ari", "image_fg_ari", "video_ari", "video_mbo", "image_mbo", "video_miou", "image_miou")
NAMES = tuple(prefix + column for prefix in evaluate.PREDICTIONS for column in COLUMNS)
RESULTS_NAME = "eval_protocols"  # OUT/eval_protocols.json and .csv
_HEADINGS = {
    "video_fg_ari": "vid FG-ARI",
    "image_fg_ari": "img FG-ARI",
    "video_ari": "vid ARI+bg",
    "video_mbo": "vid mBO",
    "image_mbo": "img mBO",
    "video_miou": "vid mIoU",
    "image_miou": "img mIoU",
}
_WITHOUT = {"one": "FG-ARI 1", "skip": "skipped"}  # How the table says what happens without objects.
_SOURCES = {"": "decoder masks", "enc_": "encoder slot attention"}


def load_from_flags(
    workdir: str | None,
    config: ml_collections.ConfigDict | None,
    params_checkpoint: str | None,
    step: int | None,
    mesh: Mesh,
) -> checkpoints.LoadedModel:
    """The model the flags name, checked, then loaded (`checkpoints.load_model`) as `python main.py
    --mode eval` loads it.

    Args:
        workdir: a training workdir (config.json, checkpoints/) or a model directory
            (`python -m ssync_jax.tools.save_model`); None with `params_checkpoint`, or None alone for
            the model shipped with the package (`checkpoints.SHIPPED_MODEL`).
        config: the experiment config; None reads the workdir's config.json.
        params_checkpoint: an orbax params checkpoint (e.g. imported weights) to evaluate instead of
            the workdir's checkpoint; None falls back to `config.eval.params_checkpoint`, then the workdir.
        step: the workdir checkpoint; None for the latest.
        mesh: the `data` mesh the params go to.

    Returns:
        (model, params, config, step: the checkpoint's, 0 for a params checkpoint).

    Raises:
        FileNotFoundError: the workdir, its config.json or the checkpoint is missing.
        ValueError: neither a workdir nor a params checkpoint with a config was given.
    """
    if workdir is None and params_checkpoint is None and config is None:
        return checkpoints.load_model(mesh=mesh)  # The shipped model.
    if workdir is not None and checkpoints.is_model_dir(workdir):
        if step is not None or params_checkpoint is not None:
            raise errors.ConfigError(f"{workdir} is a model directory (one step, its own params): drop --step and --params_checkpoint.")
        return checkpoints.load_model(workdir, config, mesh=mesh)
    if workdir is not None:
        if not checkpoints.is_workdir(workdir):  # Raises, naming it, when it does not exist.
            raise errors.InputNotFoundError(
                f"--workdir {workdir} is not a training workdir (no {checkpoints.CONFIG_FILE}, no checkpoints/); "
                "pass the --workdir of a python main.py run."
            )
        config = checkpoints.read_config(workdir) if config is None else config
    elif params_checkpoint is None or config is None:
        raise errors.ConfigError(
            "Nothing to evaluate: pass --workdir W (a python main.py run), or --params_checkpoint DIR with "
            "--config FILE (e.g. configs/movi_c.py)."
        )
    imported = params_checkpoint or config.eval.get("params_checkpoint")
    return checkpoints.load_model(imported or workdir, config, None if imported else step, mesh)


def result_rows(
    results: Mapping[str, Mapping[str, float]],
    protocols: Sequence[evaluate.Protocol],
    sizes: Mapping[str, tuple[int, int]],
) -> list[dict[str, str | float | None]]:
    """One dict per protocol: its description, then the columns of `NAMES` (None where nothing was valid)."""
    rows = []
    for protocol in protocols:
        height, width = sizes[protocol.name]
        video, frame = (_WITHOUT[protocol.video_without_foreground], _WITHOUT[protocol.frame_without_foreground])
        without = video if video == frame else f"videos {video}, frames {frame}"
        row: dict[str, str | float | None] = {
            "protocol": protocol.name,
            "used_by": protocol.used_by,
            "scored_at": f"{height}x{width}",
            "frames": "2..T" if protocol.drop_first_frame else "all",
            "without_objects": without,
        }
        for name in NAMES:
            value = results[protocol.name][name]
            row[name] = None if math.isnan(value) else value
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[Mapping[str, str | float | None]], header: str = "") -> str:
    """The rows as markdown for a person: `header`, then the protocols' descriptions, then one table of
    scores per prediction (decoder masks, encoder attention) in percent with one decimal ("–" where
    nothing was valid); every line under 100 characters."""
    lines = [header, ""] if header else []
    descriptions = ("protocol", "used_by", "scored_at", "frames", "without_objects")
    lines += ["| protocol | used by | scored at | frames | a video or frame without objects |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(str(row[key]) for key in descriptions) + " |" for row in rows]
    for prefix, source in _SOURCES.items():
        lines += ["", f"{source}, %:", ""]
        lines += ["| protocol | " + " | ".join(_HEADINGS[column] for column in COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
        for row in rows:
            cells = ["–" if row[prefix + c] is None else f"{100 * row[prefix + c]:.1f}" for c in COLUMNS]
            lines.append(f"| {row['protocol']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_header(source: str, step: int, split: str, num_videos: int) -> str:
    """The line above the tables: which model, which videos, which units."""
    return (
        f"{source} at step {step}: {split} split, {num_videos} videos.\n"
        "Scores in %. FG-ARI leaves the background out (ARI+bg keeps it); vid: over all frames of a\n"
        "video at once; img: per frame, averaged."
    )


def write_results(record: Mapping[str, object], rows: Sequence[Mapping[str, object]], out: str) -> tuple[str, str]:
    """Writes OUT/eval_protocols.json (`record` with the rows) and OUT/eval_protocols.csv (the rows).

    Returns:
        The two paths.
    """
    os.makedirs(out, exist_ok=True)
    json_path = os.path.join(out, RESULTS_NAME + ".json")
    paths.write_json(json_path, {**record, "rows": list(rows)})
    csv_path = os.path.join(out, RESULTS_NAME + ".csv")
    temporary = csv_path + ".tmp"
    with open(temporary, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, csv_path)
    return json_path, csv_path


def run(
    *,
    workdir: str | None,
    config: ml_collections.ConfigDict | None,
    params_checkpoint: str | None,
    step: int | None,
    split: str | None,
    protocols: Sequence[evaluate.Protocol],
    out: str | None,
    data: str | None = None,
) -> tuple[str, str | None, str | None]:
    """Loads, evaluates under every protocol and writes the results (with `out`); `data` names a dataset
    to score on instead of the config's `data.name`.

    Returns:
        (the printed tables, the JSON path, the CSV path; None, None without `out`).
    """
    mesh = sharding.make_mesh()
    model, params, config, step = load_from_flags(workdir, config, params_checkpoint, step, mesh)
    if data is not None:
        config = config.copy_and_resolve_references()
        config.data.name = data
    evaluation = evaluate.Evaluator(model, config, mesh, protocols).run(params, evaluate.evaluation_dataset(config, split))
    split = split or config.data.eval_split
    rows = result_rows(evaluation.scores, protocols, evaluation.sizes)
    record = {"step": step, "data": config.data.name, "split": split, "num_videos": evaluation.num_videos,
              "columns": list(NAMES)}  # fmt: skip
    source = params_checkpoint or workdir or "The shipped default model"
    table = markdown_table(rows, table_header(source, step, split if data is None else f"{data} {split}", evaluation.num_videos))
    if out is None:
        return table, None, None
    json_path, csv_path = write_results(record, rows, out)
    return table, json_path, csv_path


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    protocols = evaluate.select_protocols(options.protocols)
    if options.out:  # Before the model loads.
        paths.check_output_folder(options.out, "--out", [RESULTS_NAME + ".json", RESULTS_NAME + ".csv"])
    table, json_path, csv_path = run(
        workdir=options.workdir,
        config=options.config,
        params_checkpoint=options.params_checkpoint,
        step=options.step,
        split=options.split,
        protocols=protocols,
        out=paths.absolute(options.out) if options.out else None,
        data=options.data,
    )
    print(table)
    if json_path:
        print(f"\nWritten to {json_path} and {csv_path}")
    else:
        print(f"\nNot written: --out DIR writes {RESULTS_NAME}.json and .csv there.")


if __name__ == "__main__":
    # Defined here, not at import, so that importing this module beside other CLIs' flags cannot clash.
    from ml_collections import config_flags

    cli.DEFINE_path(
        "workdir", None, "Training workdir (config.json and checkpoints/) or model directory (save_model); "
        "default: the model shipped with the package."
    )
    flags.DEFINE_integer("step", None, "Checkpoint step of the workdir; default the latest.")
    config_flags.DEFINE_config_file(
        "config", None, "Experiment config file (with --config.a.b=value overrides): required with "
        "--params_checkpoint; with --workdir it replaces the workdir's config.json."
    )
    cli.DEFINE_path("params_checkpoint", None, "An orbax params checkpoint (e.g. imported weights) to evaluate.")
    flags.DEFINE_string("split", None, "Dataset split; default the config's data.eval_split.")
    flags.DEFINE_string("data", None, "Dataset to score on instead of the config's data.name (e.g. a larger split).")
    flags.DEFINE_string("protocols", "all", f"'all' or a comma-separated subset of {', '.join(evaluate.PROTOCOLS)}.")
    cli.DEFINE_path("out", None, "Folder for eval_protocols.json and .csv (which must not be there yet); default: print only.")
    cli.run(main)
