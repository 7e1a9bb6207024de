r"""Learning study on the generated data: base model vs SSync over seeds, and SSync's slot count.

    python -m benchmarks.learning --root workdirs/learning                  # base + ssync, seeds 0 1 2
    python -m benchmarks.learning --root workdirs/learning --variants ssync --seeds 0 --slots 7 15
    python -m benchmarks.learning --root workdirs/learning --report_only   # table from finished runs

Each run is `main.py --config configs/synthetic.py:VARIANT --mode train` with the seed, slot count
and step count set, then `--mode eval` of its last checkpoint on the held-out `test` split (never
seen while choosing anything). Runs already evaluated are skipped, so an interrupted study picks up
where it stopped. Prints mean ± sample std (in %) per (variant, slots) of the decoder-mask metrics
and of the encoder-attention ones (`enc_`), and writes the per-run metrics to `--csv`.
Arguments after `--` go to every run's main.py, e.g. `-- --config.data.num_workers=2`.
"""

import csv
import json
import os
import subprocess
import sys

import numpy as np
from absl import app, flags

METRICS = ("video_fg_ari", "image_fg_ari", "video_mbo", "image_mbo", "enc_video_fg_ari", "enc_video_mbo")
TEST_JSON = "test_metrics.json"
# Flags that take several values; docs/RESULTS.md writes them argparse's way, `--slots 7 15`.
MULTI_VALUE_FLAGS = ("--variants", "--seeds", "--slots")


def run_dir(root: str, variant: str, slots: int, seed: int) -> str:
    return os.path.join(root, f"{variant}_slots{slots}_seed{seed}")


def train_and_test(root: str, variant: str, slots: int, seed: int, steps: int, overrides: list[str]) -> dict:
    """Trains one run (resuming if it was interrupted) and evaluates it on the test split."""
    workdir = os.path.abspath(run_dir(root, variant, slots, seed))
    result_path = os.path.join(workdir, TEST_JSON)
    if os.path.exists(result_path):
        with open(result_path) as file:
            return json.load(file)
    common = [
        sys.executable,
        "main.py",
        f"--config=configs/synthetic.py:{variant}",
        f"--workdir={workdir}",
        f"--config.seed={seed}",
        f"--config.model.num_slots={slots}",
        f"--config.num_train_steps={steps}",
        *overrides,
    ]
    subprocess.run([*common, "--mode=train"], check=True)
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


def main(argv: list[str]) -> None:
    options = flags.FLAGS
    overrides = argv[1:]  # Extra --config.* flags for every run, after `--`.
    rows = []
    for variant in options.variants:
        for slots in options.slots:
            for seed in options.seeds:
                path = os.path.join(run_dir(options.root, variant, slots, seed), TEST_JSON)
                if options.report_only and not os.path.exists(path):
                    continue
                result = train_and_test(options.root, variant, slots, seed, options.steps, overrides)
                rows.append({"variant": variant, "slots": slots, "seed": seed, **{m: result[m] for m in METRICS}})
    if not rows:
        sys.exit(f"No finished runs under {options.root}")

    csv_path = options.csv or os.path.join(options.root, "learning.csv")
    with open(csv_path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["variant", "slots", "seed", *METRICS])
        writer.writeheader()
        writer.writerows(rows)
    print(f"Per-run metrics (test split, {options.steps} steps) -> {csv_path}")
    print("| variant | slots | runs | " + " | ".join(METRICS) + " |")
    print("|---|---|---|" + "---|" * len(METRICS))
    for entry in summarise(rows):
        cells = " | ".join(f"{entry[m][0]:.1f} ± {entry[m][1]:.1f}" for m in METRICS)
        print(f"| {entry['variant']} | {entry['slots']} | {entry['runs']} | {cells} |")


if __name__ == "__main__":
    # Defined here, not at import, so that importing this module beside other CLIs' flags cannot clash.
    flags.DEFINE_string("root", None, "Directory holding one workdir per run.")
    flags.DEFINE_multi_enum(
        "variants", ["base", "ssync"], ["base", "ssync"], "configs/synthetic.py variants, e.g. `--variants base ssync`"
    )
    flags.DEFINE_multi_integer("seeds", [0, 1, 2], "Seeds of each variant and slot count, e.g. `--seeds 0 1 2`")
    flags.DEFINE_multi_integer("slots", [11], "Slot counts of each variant, e.g. `--slots 7 15`")
    flags.DEFINE_integer("steps", 400, "Training steps per run (the default config's).")
    flags.DEFINE_string("csv", None, "Per-run metrics CSV (default ROOT/learning.csv).")
    flags.DEFINE_bool("report_only", False, "Tabulate finished runs, train nothing.")
    flags.mark_flag_as_required("root")
    app.run(main, argv=repeat_multi_value_flags(sys.argv))
