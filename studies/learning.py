r"""Learning study on the generated data: base model vs SSync over seeds, and SSync's slot count.

    python -m studies.learning --root workdirs/learning                  # base + ssync, seeds 0 1 2
    python -m studies.learning --root workdirs/learning --variants ssync --seeds 0 --slots 7 15
    python -m studies.learning --root workdirs/learning --report_only   # table from finished runs
    python -m studies.learning --root workdirs/learning --runs RUN_DIR RUN_DIR   # curves of any runs only

Each run is `main.py --config CONFIG:VARIANT --mode train_and_eval` (CONFIG is `--config`, default
configs/synthetic.py; it validates every `eval_every_steps`) with the seed, slot count and step
count set (the config's own slot and step counts unless `--slots`/`--steps` say otherwise), then
`--mode eval` of its last checkpoint on the held-out `test` split (never seen while choosing
anything). Runs already evaluated are skipped, so an interrupted study picks up where it stopped;
give each config its own `--root`. Prints mean ± sample std (in %) per (variant, slots) of the
decoder-mask metrics and of the encoder-attention ones (`enc_`), and writes the per-run metrics to
`--csv`. Then the learning curves: the validation metrics of every evaluation during training (each
run's `eval_history.jsonl`), as a table per run and as one PNG (`--plot`): a panel per metric, a
thin line per run, a thick line per (variant, slots) for their mean. Arguments after `--` go to
every run's main.py, e.g. `-- --config.data.num_workers=2 --config.eval_every_steps=100`.

`--runs DIR ...` trains nothing: it tabulates and plots the validation curves of any run directories
(e.g. the candidate settings tried while choosing the default), one line per directory, labelled by
its name and slot count (from its config.json).

`--study NAME` trains the runs of a named study (`studies/registry.py`: the ablations, regime
probes and the miniature Table 7 of docs/RESULTS.md §1), each in `ROOT/<run name>`, in order; a run
that branches from another waits for that run's checkpoint, so `--only` can split a study over two
processes (one per core). Then it prints the study's table (validation metrics, and test metrics
where the study uses the test split), the TensorBoard panels of its SSync runs around the switch-on,
and the validation curves (`--plot`).

    taskset -c 0 python -m studies.learning --study ablations --root R --only base,ssync &
    taskset -c 1 python -m studies.learning --study ablations --root R --only boundary_only &

`--records DIR` copies each finished run's record (config, curve, panels, test metrics; no
checkpoint) to DIR/RUN, a root the report reads. `--carry DIR` carries runs across machines that
keep nothing but the repository: at the end it keeps each begun, unfinished run (stopped with
SIGTERM or Ctrl-C, which saves a checkpoint) with its latest checkpoint in DIR/RUN; at the start it
resumes what DIR holds where the root has nothing (give the same --root: a branch run's config
names its source's path). A run stopped before its end is not tested nor marked finished.

    python -m studies.learning --study S --root R --records docs/records/features --carry studies/carry
"""

from ssync_jax import cli  # First: it quiets TensorFlow (read_panels loads it) before anything loads it.

import csv
import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Collection

import numpy as np
from absl import flags
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ssync_jax import checkpoints, logs, run_record
from studies import registry

METRICS = ("video_fg_ari", "image_fg_ari", "video_mbo", "image_mbo", "enc_video_fg_ari", "enc_video_mbo")
# The validation metrics of the learning curves: decoder masks, then the encoder's slot attention.
CURVE_METRICS = ("video_fg_ari", "video_mbo", "enc_video_fg_ari", "enc_video_mbo")
TEST_JSON = "test_metrics.json"
DEFAULT_CONFIG = "configs/synthetic.py"
# Flags that take several values; docs/RESULTS.md writes them argparse's way, `--slots 7 15`.
MULTI_VALUE_FLAGS = ("--variants", "--seeds", "--slots", "--runs")


def run_dir(root: str, variant: str, slots: int, seed: int) -> str:
    return os.path.join(root, f"{variant}_slots{slots}_seed{seed}")


def config_settings(config_file: str, variant: str) -> tuple[int, int]:
    """(slots, training steps) of a config file's variant, as written in the file.

    Args:
        config_file: a config file such as configs/synthetic.py (its `get_config(variant)`).
        variant: "base" or "ssync".
    """
    config = load_config(config_file, variant)
    return config.model.num_slots, config.num_train_steps


def load_config(config_file: str, variant: str):
    """A config file's `get_config(variant)`, as written in the file (no flags applied)."""
    spec = importlib.util.spec_from_file_location("_studied_config", config_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(variant)


def train_and_test(
    root: str, config_file: str, variant: str, slots: int, seed: int, steps: int, overrides: list[str]
) -> dict:
    """Trains one run (resuming if it was interrupted) and evaluates it on the test split."""
    workdir = os.path.abspath(run_dir(root, variant, slots, seed))
    result_path = os.path.join(workdir, TEST_JSON)
    if os.path.exists(result_path):
        with open(result_path) as file:
            return json.load(file)
    common = [
        sys.executable,
        "main.py",
        f"--config={config_file}:{variant}",
        f"--workdir={workdir}",
        f"--config.seed={seed}",
        f"--config.model.num_slots={slots}",
        f"--config.num_train_steps={steps}",
        *overrides,
    ]
    subprocess.run([*common, "--mode=train_and_eval"], check=True)  # Validation curve: eval_history.jsonl.
    subprocess.run([*common, "--mode=eval", "--config.data.eval_split=test"], check=True)
    os.replace(os.path.join(workdir, "eval_metrics.json"), result_path)
    with open(result_path) as file:
        return json.load(file)


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and sample standard deviation (ddof 1; 0 for a single run) per (variant, slots)."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["variant"], row["slots"]), []).append(row)
    summary = []
    for (variant, slots), members in sorted(groups.items()):
        entry = {"variant": variant, "slots": slots, "runs": len(members)}
        for name in METRICS:
            values = np.array([100 * m[name] for m in members])
            entry[name] = (values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0)
        summary.append(entry)
    return summary


def read_curves(root: str, rows: list[dict]) -> dict[tuple[str, int, int], list[dict]]:
    """The validation evaluations during training of each run, keyed (variant, slots, seed), in step order."""
    return {
        (row["variant"], row["slots"], row["seed"]): checkpoints.read_evaluations(
            run_dir(root, row["variant"], row["slots"], row["seed"])
        )
        for row in rows
    }


def mean_curves(curves: dict[tuple[str, int, int], list[dict]]) -> dict[tuple[str, int], list[dict]]:
    """Per (variant, slots): the mean of its runs' metrics at each step that every one of them evaluated."""
    groups: dict[tuple[str, int], list[list[dict]]] = {}
    for (variant, slots, _), curve in sorted(curves.items()):
        groups.setdefault((variant, slots), []).append(curve)
    means = {}
    for group, members in groups.items():
        by_step = [{evaluation["step"]: evaluation for evaluation in curve} for curve in members]
        steps = sorted(set.intersection(*(set(evaluations) for evaluations in by_step)))
        means[group] = [
            {"step": step, **{m: float(np.mean([e[step][m] for e in by_step])) for m in CURVE_METRICS}}
            for step in steps
        ]
    return means


def format_curves(curves: dict[tuple[str, int, int], list[dict]], first_column: str = "variant") -> list[str]:
    """A markdown table: one row per (run, evaluated step), the curve metrics in %.

    Args:
        curves: keyed (variant or run name, slots, seed).
        first_column: the heading of the keys' first part.
    """
    lines = [
        f"| {first_column} | slots | seed | step | " + " | ".join(CURVE_METRICS) + " |",
        "|---|---|---|---|" + "---|" * len(CURVE_METRICS),
    ]
    for (variant, slots, seed), curve in sorted(curves.items()):
        for evaluation in curve:
            cells = " | ".join(f"{100 * evaluation[m]:.1f}" for m in CURVE_METRICS)
            lines.append(f"| {variant} | {slots} | {seed} | {evaluation['step']} | {cells} |")
    return lines


def plot_curves(curves: dict[tuple[str, int, int], list[dict]], path: str, title: str) -> None:
    """One PNG: a panel per curve metric, a thin line per run and a thick one per (variant, slots) mean.

    Args:
        curves: `read_curves`'s result.
        path: the PNG to write.
        title: the figure's title (what was studied).
    """
    figure = Figure(figsize=(12, 8), layout="constrained")
    FigureCanvasAgg(figure)
    panels = figure.subplots(2, 2).ravel()
    means = mean_curves(curves)
    colours = {group: f"C{index}" for index, group in enumerate(sorted(means))}
    for axes, metric in zip(panels, CURVE_METRICS):
        for (variant, slots, _), curve in sorted(curves.items()):
            steps = [evaluation["step"] for evaluation in curve]
            values = [100 * evaluation[metric] for evaluation in curve]
            axes.plot(steps, values, color=colours[(variant, slots)], alpha=0.35, linewidth=1, marker=".")
        for (variant, slots), curve in sorted(means.items()):
            runs = sum(1 for key in curves if key[:2] == (variant, slots))
            axes.plot(
                [evaluation["step"] for evaluation in curve],
                [100 * evaluation[metric] for evaluation in curve],
                color=colours[(variant, slots)],
                linewidth=2.5,
                marker="o",
                label=f"{variant}, {slots} slots" + (f" (mean of {runs})" if runs > 1 else ""),
            )
        source = "encoder attention" if metric.startswith("enc_") else "decoder masks"
        axes.set_title(f"{metric.removeprefix('enc_')} ({source})")
        axes.set_xlabel("training step")
        axes.set_ylabel("validation %")
        axes.set_ylim(0, 100)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
    figure.suptitle(textwrap.fill(title, width=140))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=100)


def repeat_multi_value_flags(argv: list[str]) -> list[str]:
    """Spells `--slots 7 15` as absl reads several values, `--slots 7 --slots 15` (up to a `--`)."""
    spelled, flag = [], None
    for position, arg in enumerate(argv):
        if arg == "--":
            return spelled + argv[position:]
        if arg.startswith("-"):
            flag = arg if arg in MULTI_VALUE_FLAGS else None
        elif flag and spelled[-1] != flag:
            spelled.append(flag)
        spelled.append(arg)
    return spelled


def run_curves(workdirs: list[str]) -> dict[tuple[str, int, int], list[dict]]:
    """The validation curves of finished run directories, keyed (directory name, slots, 0)."""
    curves = {}
    for workdir in workdirs:
        try:
            slots = checkpoints.read_config(workdir).model.num_slots
        except FileNotFoundError as error:
            sys.exit(f"--runs {workdir}: {error}")
        curve = checkpoints.read_evaluations(workdir)
        if not curve:
            sys.exit(f"--runs {workdir}: no {checkpoints.EVAL_HISTORY} there; the run has not evaluated yet.")
        curves[(os.path.basename(os.path.normpath(workdir)), slots, 0)] = curve
    return curves


def report_runs(options) -> None:
    """`--runs`: the table and plot of the named run directories' validation curves."""
    curves = run_curves(options.runs)
    plot_path = options.plot or os.path.join(options.root, "run_curves.png")
    plot_curves(curves, plot_path, "validation metrics during training")
    print(f"Learning curves (validation split, %) -> {plot_path}")
    print("\n".join(format_curves(curves, first_column="run")))


# Written once a study's run has trained (and been tested): its last metrics. Per study, as one run
# directory may serve two studies (a regime's premise stops at 30 % the run its Table 7 continues).
FINISHED = "study_{}.json"
PANELS_JSON = "panels.json"  # read_panels' values, written when a run finishes: a record needs no events file.
# What `--records` keeps of a finished run (with its FINISHED marker): what the report reads.
RECORD_FILES = (run_record.CONFIG_FILE, checkpoints.EVAL_HISTORY, run_record.CHANGES_FILE, TEST_JSON, PANELS_JSON)
# TensorBoard panels of the study tables: what the objective saw in the training batches.
PANELS = ("ssync/boundary_fraction", "ssync/interior_fraction", "ssync/merged_slots", "loss/reconstruction")
# Validation metrics of the study tables, beside the curve metrics.
OBJECTIVE_METRICS = ("reconstruction_mse", "ssync_boundary_fraction", "ssync_interior_fraction")
# What a collapse does to the maps and the information they carry (`ssync_jax.evaluate`), before and
# after the switch-on: the maps' entropy over slots, the slots their argmax uses, the reconstruction
# by the soft mixture and by each patch's argmax slot alone.
MECHANISM_METRICS = (
    "enc_map_entropy", "dec_map_entropy", "enc_slots_used", "dec_slots_used", "reconstruction_mse",
    "hard_reconstruction_mse",
)  # fmt: skip
# Steps after the switch-on at which the mechanism table reads the SSync runs and their base twins.
MECHANISM_OFFSETS = (0, 1500, 4500)


def study_overrides(study: registry.Study, run: registry.Run, root: str) -> list[str]:
    """The run's `--config.*` flags: the study's, then its own (winning on the same key), then its branch."""
    merged = {}
    for override in (*study.overrides, *run.overrides):
        merged[override.split("=", 1)[0]] = override
    if run.branch is not None:
        parent, step = run.branch
        merged["--config.init_from"] = f"--config.init_from={os.path.abspath(os.path.join(root, parent))}"
        merged["--config.init_from_step"] = f"--config.init_from_step={step}"
    return list(merged.values())


def _wait_for_checkpoint(workdir: str, step: int) -> None:
    """Blocks until `workdir` holds a finished checkpoint of `step` (another process may be training it)."""
    path = os.path.join(checkpoints.checkpoint_dir(workdir), str(step))
    announced = False
    while not os.path.isdir(path):
        if not announced:
            print(f"Waiting for {path} (its run is being trained elsewhere)", flush=True)
            announced = True
        time.sleep(30)


def checkpoint_steps(workdir: str) -> list[int]:
    """The steps of a run directory's finished checkpoints (orbax writes each under a temporary name first)."""
    directory = checkpoints.checkpoint_dir(workdir)
    if not os.path.isdir(directory):
        return []
    return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def run_end(study: registry.Study, run: registry.Run) -> int:
    """The step a run of the study trains to: its config's `num_train_steps`, or `stop_after_step` if
    earlier, its study's and its own flags applied."""
    config = load_config(run.config or study.config, run.variant)
    steps, stop = config.num_train_steps, config.get("stop_after_step")
    for override in study_overrides(study, run, root="."):
        key, value = override.split("=", 1)
        if key == "--config.num_train_steps":
            steps = int(value)
        elif key == "--config.stop_after_step":
            stop = None if value == "None" else int(value)
    return steps if stop is None else min(stop, steps)


def train_study_run(study: registry.Study, run: registry.Run, root: str) -> bool:
    """Trains (resuming) one run of a study, evaluates it on the test split if the study does, marks it done.

    Returns False, marking nothing, where training stopped before the run's end (a SIGTERM or Ctrl-C
    saves a checkpoint and stops main.py cleanly): the same command resumes it."""
    workdir = os.path.abspath(os.path.join(root, run.name))
    finished = os.path.join(workdir, FINISHED.format(study.name))
    if os.path.exists(finished):
        return True
    end = run_end(study, run)
    # Another study trained the run on past this one's end (Table 7 continuing a factor study's run, its
    # settings the same but for stop_after_step): its evaluation at the end is this study's reading.
    steps = checkpoint_steps(workdir)
    past_end = max(steps, default=0) > end and any(
        evaluation["step"] == end for evaluation in checkpoints.read_evaluations(workdir)
    )
    if past_end and study.test:
        raise SystemExit(f"{run.name} was trained past this study's end (step {end}) by another study: its test "
                         f"split cannot be read at step {end}. Train it in a root of its own.")  # fmt: skip
    common = [
        sys.executable,
        "main.py",
        f"--config={run.config or study.config}:{run.variant}",
        f"--workdir={workdir}",
        *study_overrides(study, run, root),
    ]
    if not past_end:
        if run.branch is not None and not steps:  # Resumed, it has its own checkpoint.
            _wait_for_checkpoint(os.path.join(root, run.branch[0]), run.branch[1])
        print(f"Training {run.name}: {' '.join(common[1:])}", flush=True)
        subprocess.run([*common, "--mode=train_and_eval"], check=True)
        reached = max(checkpoint_steps(workdir), default=0)
        if reached < end:
            print(f"{run.name} stopped at step {reached} of {end}: not finished; the same command resumes it.", flush=True)
            return False
    result = {"validation": [e for e in checkpoints.read_evaluations(workdir) if e["step"] <= end][-1]}
    if study.test:
        subprocess.run([*common, "--mode=eval", "--config.data.eval_split=test"], check=True)
        os.replace(os.path.join(workdir, "eval_metrics.json"), os.path.join(workdir, TEST_JSON))
        with open(os.path.join(workdir, TEST_JSON)) as file:
            result["test"] = json.load(file)
    write_panels(workdir)
    with open(finished, "w") as file:
        json.dump(result, file, indent=1)
    return True


def finished_studies(workdir: str) -> list[str]:
    """The file names of the FINISHED markers in a run directory: one per study that finished the run."""
    return sorted(os.path.basename(path) for path in glob.glob(os.path.join(workdir, FINISHED.format("*"))))


def finished_in(workdir: str, study: registry.Study) -> bool:
    """Whether the run in `workdir` has finished `study` (its FINISHED marker is there)."""
    return os.path.exists(os.path.join(workdir, FINISHED.format(study.name)))


def reported(study: registry.Study, step: int) -> bool:
    """Whether a study reads a run's value logged at `step`: all of them, or up to its `report_step`
    (another study may have trained the run further)."""
    return study.report_step is None or step <= study.report_step


def _replace_whole(target: str, copies: list[tuple[str, str]]) -> None:
    """Writes directory `target` afresh from (source file or directory, name inside it) pairs: staged
    beside it, then renamed over the old one, so nothing of an earlier version stays merged in and an
    interrupted copy leaves no half-written `target`."""
    staged = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.partial")
    shutil.rmtree(staged, ignore_errors=True)
    os.makedirs(staged)
    for source, name in copies:
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(staged, name))
        else:
            shutil.copyfile(source, os.path.join(staged, name))
    shutil.rmtree(target, ignore_errors=True)
    os.rename(staged, target)


def save_records(study: registry.Study, root: str, records: str) -> list[str]:
    """Copies each finished run's record (`RECORD_FILES`: config, curves, panels, test metrics — kilobytes,
    no checkpoint) from `root` to `records`/RUN; returns the runs copied.

    A records directory is a root the report reads like any other, so a study whose runs finish on
    different machines or days is tabulated whole from the records committed as each run lands. A
    run's record is replaced whole (never merged with an earlier record of that name, which may be
    another training of it: a stale test result or study marker would be read as this run's).
    """
    copied = []
    for run in study.runs:
        workdir = os.path.join(root, run.name)
        if not finished_in(workdir, study):
            continue
        if not os.path.exists(os.path.join(workdir, PANELS_JSON)):  # Finished before runs wrote one.
            write_panels(workdir)
        names = (*RECORD_FILES, *finished_studies(workdir))  # Every study the run has finished, not only this one.
        copies = [(os.path.join(workdir, name), name) for name in names if os.path.exists(os.path.join(workdir, name))]
        _replace_whole(os.path.join(records, run.name), copies)
        copied.append(run.name)
    return copied


def save_carry(study: registry.Study, root: str, carry: str, names: Collection[str] | None = None) -> list[str]:
    """Keeps each begun, unfinished run of the study in `carry`/RUN so that a later session, on another
    machine, resumes it (`restore_carry`); returns the runs kept. A finished run's carry is removed.
    Only the runs in `names` (default: all) are touched: with `--only`, the others may be another
    process's, in flight.

    A run is kept as its directory's files (config, curve, events: what its record and panels need)
    and its latest checkpoint, plus any checkpoint that a run of the study not yet begun branches from
    (so a finished run is kept while such a run needs it: the factor study's regime base, finished at
    its stop, for the trainable arm). Each is replaced whole. Resume into the same --root: a run's
    config names its branch source's path.
    """
    kept = []
    for run in study.runs:
        if names is not None and run.name not in names:
            continue
        workdir, kept_dir = os.path.join(root, run.name), os.path.join(carry, run.name)
        steps = checkpoint_steps(workdir)
        branch_points = {
            other.branch[1] for other in study.runs
            if other.branch and other.branch[0] == run.name and other.branch[1] in steps
            and not checkpoint_steps(os.path.join(root, other.name))
        }  # fmt: skip
        if finished_in(workdir, study) and not branch_points:
            shutil.rmtree(kept_dir, ignore_errors=True)
            continue
        if not steps:
            continue
        wanted = {steps[-1]} | branch_points
        files = [(os.path.join(workdir, name), name) for name in os.listdir(workdir) if os.path.isfile(os.path.join(workdir, name))]
        directory = checkpoints.checkpoint_dir(workdir)
        saved = [(os.path.join(directory, str(step)), os.path.join(os.path.basename(directory), str(step))) for step in sorted(wanted)]
        _replace_whole(kept_dir, files + saved)
        kept.append(run.name)
    return kept


def restore_carry(study: registry.Study, root: str, carry: str) -> list[str]:
    """Copies each run that `save_carry` kept into `root` where the root has no checkpoint of it (a
    run the root holds trained is left as it is); returns the runs restored."""
    restored = []
    for run in study.runs:
        kept_dir, workdir = os.path.join(carry, run.name), os.path.join(root, run.name)
        if os.path.isdir(kept_dir) and not checkpoint_steps(workdir):
            shutil.rmtree(workdir, ignore_errors=True)
            shutil.copytree(kept_dir, workdir)
            restored.append(run.name)
    return restored


def write_panels(workdir: str) -> None:
    """Writes `read_panels(workdir)` (from its events) to its `PANELS_JSON`, for its record."""
    panels = read_panels(workdir)
    with open(os.path.join(workdir, PANELS_JSON), "w") as file:
        json.dump(panels, file)


def read_panels(workdir: str) -> dict[str, dict[int, float]]:
    """{panel: {step: value}} of the TensorBoard scalars in `PANELS` a run logged: from its events, or in
    a records directory, which keeps none, from its `PANELS_JSON` (the events hold every step, also
    those of a run trained on after a study wrote the file)."""
    events = sorted(glob.glob(os.path.join(workdir, "events.out.tfevents.*")))
    if not events and os.path.exists(os.path.join(workdir, PANELS_JSON)):
        with open(os.path.join(workdir, PANELS_JSON)) as file:
            return {panel: {int(step): value for step, value in values.items()} for panel, values in json.load(file).items()}
    logs.import_tensorflow_quietly()
    import tensorflow as tf  # Only reports that read events pay for it.

    panels: dict[str, dict[int, float]] = {}
    for path in events:
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag in PANELS:
                    panels.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    return panels


def switch_on_step(config) -> int | None:
    """The step the run's SSync losses switch on (None: it has none, or both weigh 0)."""
    steps = [
        round(config.losses[name].get("warmup_fraction", 0.0) * config.num_train_steps)
        for name in ("ssync_boundary", "ssync_interior")
        if name in config.losses and config.losses[name].get("weight", 1.0)
    ]
    return min(steps) if steps else None


def _cell(record: dict | None, metric: str) -> str:
    if record is None or metric not in record:
        return "–"
    value = record[metric]
    return f"{value:.4f}" if metric == "reconstruction_mse" else f"{100 * value:.1f}"


def report_study(study: registry.Study, root: str, plot_path: str | None, csv_path: str | None) -> None:
    """Prints a study's tables (metrics per run; SSync runs' panels around the switch-on), writes the first
    as CSV (`csv_path`, default ROOT/<study>.csv) and plots the validation curves."""
    print(f"## {study.description}\n")
    columns = ("video_fg_ari", "enc_video_fg_ari", "video_mbo", *OBJECTIVE_METRICS)
    header = "| run | SSync on at | last step | " + " | ".join(f"val {c}" for c in columns)
    header += " | " + " | ".join(f"test {c}" for c in METRICS[:3]) if study.test else ""
    print(header + " |")
    print("|---|---:|---:|" + "---:|" * (len(columns) + (3 if study.test else 0)))
    curves, panel_rows, csv_rows = {}, [], []
    for run in study.runs:
        workdir = os.path.join(root, run.name)
        evaluations = checkpoints.read_evaluations(workdir)
        if not evaluations:
            continue
        if finished_studies(workdir) and not finished_in(workdir, study):
            continue  # Another study's finished run (e.g. a factor run at 9,000 that Table 7 has yet to train on).
        config = checkpoints.read_config(workdir)
        # A study with a test split compares variants over seeds: its curves are grouped by variant.
        label = run.variant.split(",")[0] if study.test else run.name
        evaluations = [e for e in evaluations if reported(study, e["step"])]
        # A params-only branch counts its steps from 0: its curve is drawn from its branch point on.
        offset = run.branch[1] if run.branch and config.get("init_from_params_only") else 0
        curves[(label, config.model.num_slots, config.seed)] = [{**e, "step": e["step"] + offset} for e in evaluations]
        last = evaluations[-1]
        switch = switch_on_step(config)
        cells = [_cell(last, c) for c in columns]
        csv_row = {"run": run.name, "slots": config.model.num_slots, "seed": config.seed, "ssync_on_at": switch,
                   "last_step": last["step"], **{f"val_{c}": last.get(c) for c in columns}}
        if study.test:
            test = None
            if os.path.exists(os.path.join(workdir, TEST_JSON)):
                with open(os.path.join(workdir, TEST_JSON)) as file:
                    test = json.load(file)
            cells += [_cell(test, c) for c in METRICS[:3]]
            csv_row.update({f"test_{m}": (test or {}).get(m) for m in METRICS})
        csv_rows.append(csv_row)
        print(f"| {run.name} | {switch if switch is not None else '–'} | {last['step']} | " + " | ".join(cells) + " |")
        if switch is not None:
            panel_rows.append((run.name, switch, read_panels(workdir)))
    tested = [row for row in csv_rows if row.get(f"test_{METRICS[0]}") is not None]
    if tested:
        print(f"\nTest split, mean ± sample std over seeds, in % ({len(tested)} runs):\n")
        grouped = [
            {"variant": row["run"].split("_slots")[0], "slots": row["slots"], **{m: row[f"test_{m}"] for m in METRICS}}
            for row in tested
        ]
        print("| variant | slots | runs | " + " | ".join(METRICS) + " |")
        print("|---|---|---|" + "---|" * len(METRICS))
        for entry in summarise(grouped):
            cells = " | ".join(f"{entry[m][0]:.1f} ± {entry[m][1]:.1f}" for m in METRICS)
            print(f"| {entry['variant']} | {entry['slots']} | {entry['runs']} | {cells} |")
    csv_path = csv_path or os.path.join(root, f"{study.name}.csv")
    if csv_rows:
        with open(csv_path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(csv_rows[0]))
            writer.writeheader()
            writer.writerows(csv_rows)
        print(f"\nPer-run values -> {csv_path}")
    if panel_rows:
        print("\nTraining batches' panels (boundary / interior fraction / merged slots per clip / reconstruction "
              "MSE), logged every log_every_steps, at steps relative to the switch-on:\n")
        offsets = (-100, 100, 200, 500, 2000)
        print("| run | " + " | ".join(f"{o:+d}" for o in offsets) + " | last |")
        print("|---|" + "---|" * (len(offsets) + 1))
        for name, switch, panels in panel_rows:
            steps = sorted(step for step in panels.get(PANELS[0], {}) if reported(study, step))
            wanted = [switch + o for o in offsets] + ([steps[-1]] if steps else [])
            cells = []
            for step in wanted:
                values = [panels.get(panel, {}).get(step) for panel in PANELS]
                formats = ("{:.2f}",) * 3 + ("{:.4f}",)
                cells.append("–" if values[0] is None else " / ".join(
                    "–" if v is None else f.format(v) for f, v in zip(formats, values, strict=True)))  # fmt: skip
            print(f"| {name} | " + " | ".join(cells) + " |")
    mechanism = mechanism_rows(study, root)
    if mechanism:
        print("\nThe mechanism (validation): the maps' entropy over slots (fraction of log S), the slots their "
              "argmax uses per frame, the reconstruction by the soft mixture and by each patch's argmax slot "
              "alone; each SSync run beside its base twin, at the switch-on and after:\n")
        print("| run | step | " + " | ".join(MECHANISM_METRICS) + " |")
        print("|---|---:|" + "---:|" * len(MECHANISM_METRICS))
        for name, step, record in mechanism:
            cells = " | ".join(
                "–" if m not in record else f"{record[m]:.4f}" if "mse" in m else f"{record[m]:.2f}"
                for m in MECHANISM_METRICS
            )
            print(f"| {name} | {step} | {cells} |")
    if curves:
        plot_path = plot_path or os.path.join(root, "learning_curves.png")
        plot_curves(curves, plot_path, study.description)
        print(f"\nLearning curves (validation split, %; a params-only branch's steps counted from its source's "
              f"start) -> {plot_path}")
        print("\n".join(format_curves(curves, first_column="run")))


def mechanism_rows(study: registry.Study, root: str) -> list[tuple[str, int, dict]]:
    """(run, step, validation record) of each SSync run that branched from its base twin, and of that
    twin, at the switch-on (the twin's evaluation: the branch starts from it) and `MECHANISM_OFFSETS`
    steps after it, where evaluated. A twin's row appears once, also where several SSync runs branch
    from it; an SSync run evaluated at none of those steps (not begun, or counting its steps afresh
    like the factor study's trainable arm) is left out with its twin's rows."""
    rows, listed = [], set()
    for run in study.runs:
        if run.branch is None or not run.variant.startswith("ssync"):
            continue
        parent, switch = run.branch
        twin = {e["step"]: e for e in checkpoints.read_evaluations(os.path.join(root, parent))}
        own = {e["step"]: e for e in checkpoints.read_evaluations(os.path.join(root, run.name))}
        if not any(switch + offset in own for offset in MECHANISM_OFFSETS if offset):
            continue
        for offset in MECHANISM_OFFSETS:
            step = switch + offset
            for name, evaluations in ((run.name, own if offset else twin), (parent, twin)):
                if step in evaluations and (offset or name == parent) and (name, step) not in listed:
                    listed.add((name, step))
                    rows.append((name, step, evaluations[step]))
    return rows


def run_study(options) -> None:
    """`--study`: trains the study's runs (those named by `--only`), then reports the whole study."""
    study = registry.get(options.study)
    only = set(options.only.split(",")) if options.only else None
    known = {run.name for run in study.runs}
    if only and only - known:
        sys.exit(f"--only {options.only}: the study {options.study!r} has no run(s) {sorted(only - known)}; its runs: "
                 f"{', '.join(sorted(known))}")
    stopped = None
    if not options.report_only:
        if options.carry:
            restored = restore_carry(study, options.root, options.carry)
            print(f"Resuming {len(restored)} run(s) from {options.carry}: {', '.join(restored) or '-'}", flush=True)
        # In the study's order, or in --only's: a process per core can take its share in an order
        # that keeps it from waiting for branch points the other is still training.
        by_name = {run.name: run for run in study.runs}
        order = study.runs if only is None else [by_name[name] for name in options.only.split(",")]
        for run in order:
            if not train_study_run(study, run, options.root):
                stopped = run.name
                break
    if options.records:
        copied = save_records(study, options.root, options.records)
        print(f"Records of {len(copied)} finished run(s) -> {options.records}", flush=True)
    if options.carry:
        kept = save_carry(study, options.root, options.carry, names=only)
        print(f"Kept {len(kept)} unfinished run(s) for a later session in {options.carry}: {', '.join(kept) or '-'}", flush=True)
    report_study(study, options.root, options.plot, options.csv)
    if stopped:
        sys.exit(f"{stopped} was stopped before its end; rerun the command to resume it (and the runs after it).")


def main(argv: list[str]) -> None:
    options = flags.FLAGS
    if options.runs:
        report_runs(options)
        return
    if options.study:
        if len(argv) > 1:
            sys.exit(f"--study takes no extra main.py flags ({argv[1:]}); a study's runs are defined in studies/registry.py")
        run_study(options)
        return
    overrides = argv[1:]  # Extra --config.* flags for every run, after `--`.
    rows = []
    for variant in options.variants:
        config_slots, config_steps = config_settings(options.config, variant)
        steps = options.steps or config_steps
        for slots in options.slots or [config_slots]:
            for seed in options.seeds:
                path = os.path.join(run_dir(options.root, variant, slots, seed), TEST_JSON)
                if options.report_only and not os.path.exists(path):
                    continue
                result = train_and_test(options.root, options.config, variant, slots, seed, steps, overrides)
                rows.append({"variant": variant, "slots": slots, "seed": seed, **{m: result[m] for m in METRICS}})
    if not rows:
        sys.exit(f"No finished runs under {options.root}")

    csv_path = options.csv or os.path.join(options.root, "learning.csv")
    with open(csv_path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["variant", "slots", "seed", *METRICS])
        writer.writeheader()
        writer.writerows(rows)
    steps_note = f"{options.steps} steps" if options.steps else "the config's steps"
    print(f"Per-run metrics (test split, {options.config}, {steps_note}) -> {csv_path}")
    print("| variant | slots | runs | " + " | ".join(METRICS) + " |")
    print("|---|---|---|" + "---|" * len(METRICS))
    for entry in summarise(rows):
        cells = " | ".join(f"{entry[m][0]:.1f} ± {entry[m][1]:.1f}" for m in METRICS)
        print(f"| {entry['variant']} | {entry['slots']} | {entry['runs']} | {cells} |")

    curves = read_curves(options.root, rows)
    without = sorted(key for key, curve in curves.items() if not curve)
    if without:  # Trained with --mode=train, or before eval_history.jsonl existed.
        names = ", ".join(f"{variant} {slots} slots seed {seed}" for variant, slots, seed in without)
        print(f"\nNo validation curve (no {checkpoints.EVAL_HISTORY}) in: {names}")
    curves = {key: curve for key, curve in curves.items() if curve}
    plot_path = options.plot or os.path.join(options.root, "learning_curves.png")
    plot_curves(curves, plot_path, f"{options.config}: validation metrics during training ({options.root})")
    print(f"\nLearning curves (validation split, %) -> {plot_path}")
    print("\n".join(format_curves(curves)))


if __name__ == "__main__":
    # Defined here, not at import, so that importing this module beside other CLIs' flags cannot clash.
    flags.DEFINE_string("root", None, "Directory holding one workdir per run (one root per config).")
    flags.DEFINE_string("config", DEFAULT_CONFIG, "Config file studied; each variant runs as CONFIG:VARIANT.")
    flags.DEFINE_multi_enum(
        "variants", ["base", "ssync"], ["base", "ssync"], "Config variants, e.g. `--variants base ssync`"
    )
    flags.DEFINE_multi_integer("seeds", [0, 1, 2], "Seeds of each variant and slot count, e.g. `--seeds 0 1 2`")
    flags.DEFINE_multi_integer("slots", None, "Slot counts of each variant, e.g. `--slots 7 15` (default: the config's)")
    flags.DEFINE_integer("steps", None, "Training steps per run (default: the config's num_train_steps).")
    flags.DEFINE_string("csv", None, "Per-run metrics CSV (default ROOT/learning.csv).")
    flags.DEFINE_string("plot", None, "Learning-curve PNG (default ROOT/learning_curves.png).")
    flags.DEFINE_bool("report_only", False, "Tabulate finished runs, train nothing.")
    flags.DEFINE_multi_string("runs", None, "Run directories whose validation curves to plot (trains nothing).")
    flags.DEFINE_string("study", None, f"A named study of studies/registry.py: {', '.join(sorted(registry.STUDIES))}.")
    flags.DEFINE_string(
        "records", None, "With --study: copy each finished run's record (no checkpoint) to RECORDS/RUN; a "
        "records directory can be given as --root to --report_only."
    )
    flags.DEFINE_string(
        "carry", None, "With --study: resume runs kept in CARRY/RUN where --root has none, and keep each begun, "
        "unfinished run's latest checkpoint there (for a later session on another machine; same --root)."
    )
    flags.DEFINE_string(
        "only", None, "With --study: train only these runs (comma-separated names, in this order), then report all."
    )
    flags.mark_flag_as_required("root")
    sys.argv = repeat_multi_value_flags(sys.argv)
    cli.run(main)
