"""Smoke tests of the benchmark scripts (no timing assertions: the figures are what the scripts print).

benchmarks/data.py's measurement functions run at smoke-test sizes and give one positive rate per
setting; benchmarks/objective_scaling.py re-plots a hand-written 3-row CSV into a PNG whose legend
exponents are the log-log least-squares slopes. The command lines of the two benchmarks that run
without measuring anything (re-plotting, tabulating finished runs) run as written in the docs.
"""

import csv
import dataclasses
import importlib
import json
import math
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags

from benchmarks import data, learning, objective_scaling, studies
from ssync_jax import checkpoints

_MACHINE = "2-core CPU (test)"
_REPO = pathlib.Path(__file__).resolve().parents[1]


def _run_module(module: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m module args...` from the repository root; fails the test on a non-zero exit if `check`."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=_REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert not check or result.returncode == 0, result.stderr[-3000:]
    return result


def test_importing_the_benchmarks_defines_no_flags():
    # data.py imports generator.py and pipeline.py, so their flags would be its dead flags.
    # (tfds_synthetic_movi.py still defines its flags at import.)
    names = (
        "attention",
        "data",
        "generator",
        "learning",
        "machine",
        "matmul",
        "objective_scaling",
        "pipeline",
        "train_speed",
        "train_step",
    )
    for name in names:
        importlib.import_module(f"benchmarks.{name}")
    defining = [module for module in flags.FLAGS.flags_by_module_dict() if module.startswith("benchmarks.")]
    assert defining == []


def test_matmul_report_prints_every_product_form_and_layer_with_positive_rates():
    result = _run_module("benchmarks.matmul", "--rows", "256", "--width", "64", "--repeats", "1")
    products = [line for line in result.stdout.splitlines() if line.startswith("    ") and "@" in line]
    layers = [line for line in result.stdout.splitlines() if "x float32" in line]
    assert len(products) == 9 and len(layers) == 3
    assert all(float(line.split()[-1]) > 0 for line in products)
    assert layers[0].split()[-2] == "1.00x"  # float32 against itself


def test_attention_report_prints_both_forms_and_the_vit_rate_in_both_dtypes():
    result = _run_module("benchmarks.attention", "--frames", "1", "--depth", "1", "--repeats", "1")
    for dtype in ("float32", "bfloat16"):
        rates = re.findall(rf"{dtype} +attention, (batched|per head) +[\d.]+ ms +([\d.]+) GFLOP/s", result.stdout)
        assert [form for form, _ in rates] == ["batched", "per head"] and all(float(r) > 0 for _, r in rates), result.stdout
        assert re.search(rf"{dtype} +ViT-S/14 forward \(1 blocks\) +[\d.]+ ms +[\d.]+ GFLOP/s = \d+% of", result.stdout)


def test_pipeline_settings_are_the_movi_c_and_default_training_shapes():
    movi_c, default = data.pipeline_settings()
    assert (movi_c.batch_size, movi_c.chunk_length, movi_c.image_size, movi_c.normalization) == (
        64, 4, 336, "imagenet"
    )
    assert (movi_c.source_size, movi_c.workers) == (128, (0, 2))
    assert (default.batch_size, default.chunk_length, default.image_size, default.normalization) == (
        8, 2, 32, "zero_one"
    )
    assert (default.source_size, default.source_frames, default.workers) == (32, 8, (0,))


def test_quick_measurements_give_one_positive_rate_per_config_and_setting(tmp_path):
    generated = data.generator_rows(["c_64x64"], num_videos=1, size=32, frames=4)
    settings = [
        dataclasses.replace(data.quick_setting(setting), workers=(0,)) for setting in data.pipeline_settings()
    ]
    batched = data.pipeline_rows(settings, num_batches=1, num_videos=2)

    assert [(row.part, row.setting, row.shape) for row in generated] == [("generator", "c_64x64", "32x32 x 4 frames")]
    assert [(row.setting, row.workers) for row in batched] == [("MOVi-C training", 0), ("default (synthetic.py)", 0)]
    for row in generated + batched:
        assert math.isfinite(row.videos_per_second) and row.videos_per_second > 0
    assert [row.shape.split(",")[0] for row in batched] == ["2 x 4 x 32²", "2 x 2 x 32²"]
    for row in batched:
        assert row.videos_per_second == pytest.approx(2 * row.batches_per_second)

    table = data.format_table(generated + batched).splitlines()
    assert len(table) == 1 + 3 and "MOVi-C training" in table[2]
    path = tmp_path / "data.csv"
    data.write_csv(generated + batched, path, _MACHINE, "2026-01-01 00:00")
    with path.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    assert [record["setting"] for record in records] == ["c_64x64", "MOVi-C training", "default (synthetic.py)"]
    assert {record["machine"] for record in records} == {_MACHINE}


def _write_table(path, columns: dict[str, list]) -> None:
    """A CSV in objective_scaling's layout, written by hand."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(columns))
        writer.writerows(zip(*columns.values()))


def test_plot_from_three_row_csv_writes_png_with_log_log_slopes(tmp_path):
    patches = np.array([256, 1024, 4096])  # 4 frames of 8², 16², 32² patches.
    noisy_memory = [0.7, 3.5, 11.0]
    ssync_ms = 0.01 * patches  # Linear: slope 1.
    srl_ms = 1e-4 * patches**2.0  # Quadratic: slope 2.
    srl_mb = [12.6, 196.3, 3089.0]
    table = tmp_path / "scaling.csv"
    _write_table(
        table,
        {
            "side": [8, 16, 32], "T*N": patches, "ssync_ms": ssync_ms, "srl_ms": srl_ms,
            "ssync_MB": noisy_memory, "srl_MB": srl_mb,
            "time_ratio": srl_ms / ssync_ms, "memory_ratio": np.divide(srl_mb, noisy_memory),
            "batch": [8] * 3, "frames": [4] * 3, "slots": [11] * 3, "machine": [_MACHINE] * 3,
        },
    )

    rows, setting = objective_scaling.read_csv(table)
    png = tmp_path / "plots" / "scaling.png"
    exponents = objective_scaling.plot(rows, setting, png)

    assert setting == objective_scaling.Setting(8, 4, 11, _MACHINE)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 0
    assert exponents["ssync_ms"] == pytest.approx(1.0)
    assert exponents["srl_ms"] == pytest.approx(2.0)
    log_patches = np.log(patches)
    assert exponents["ssync_mb"] == pytest.approx(np.polyfit(log_patches, np.log(noisy_memory), 1)[0])
    assert exponents["srl_mb"] == pytest.approx(np.polyfit(log_patches, np.log(srl_mb), 1)[0])


def test_csv_without_the_setting_columns_is_rejected_with_the_remeasure_command(tmp_path):
    table = tmp_path / "old.csv"
    _write_table(table, {column: [1] for column in objective_scaling.HEADER})
    with pytest.raises(ValueError, match=r"lacks columns \['batch', 'frames', 'slots', 'machine'\].*--csv"):
        objective_scaling.read_csv(table)


def test_learning_summary_is_the_mean_and_sample_std_in_percent_per_variant_and_slot_count():
    rows = [
        {"variant": "ssync", "slots": 11, "seed": seed, **{m: value for m in learning.METRICS}}
        for seed, value in enumerate([0.1, 0.2, 0.6])
    ] + [{"variant": "base", "slots": 7, "seed": 0, **{m: 0.5 for m in learning.METRICS}}]
    summary = {(entry["variant"], entry["slots"]): entry for entry in learning.summarise(rows)}
    mean, std = summary[("ssync", 11)]["video_fg_ari"]
    np.testing.assert_allclose(mean, 30.0)
    np.testing.assert_allclose(std, np.std([10.0, 20.0, 60.0], ddof=1))
    assert summary[("ssync", 11)]["runs"] == 3
    assert summary[("base", 7)]["video_mbo"] == (50.0, 0.0)  # One run: no spread.


def test_replotting_from_csv_writes_the_plot_only_and_prints_the_exponents(tmp_path):
    patches = np.array([256, 1024, 4096])
    linear, quadratic = 0.01 * patches, 1e-4 * patches**2.0
    table = tmp_path / "scaling.csv"
    _write_table(
        table,
        {
            "side": [8, 16, 32], "T*N": patches, "ssync_ms": linear, "srl_ms": quadratic,
            "ssync_MB": linear, "srl_MB": quadratic, "time_ratio": quadratic / linear,
            "memory_ratio": quadratic / linear,
            "batch": [8] * 3, "frames": [4] * 3, "slots": [11] * 3, "machine": [_MACHINE] * 3,
        },
    )
    png, measured = tmp_path / "scaling.png", tmp_path / "measured.csv"

    result = _run_module(
        "benchmarks.objective_scaling", "--from_csv", str(table), "--plot", str(png), "--csv", str(measured)
    )

    assert "SSync time 1.00, memory 1.00" in result.stdout
    assert "SRL   time 2.00, memory 2.00" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not measured.exists()


def test_multi_value_flags_are_spelled_repeated_up_to_the_double_dash():
    argv = ["learning.py", "--variants", "ssync", "--seeds", "0", "--slots", "7", "15", "--report_only"]
    assert learning.repeat_multi_value_flags([*argv, "--", "--config.seed=1", "2"]) == [
        "learning.py", "--variants", "ssync", "--seeds", "0", "--slots", "7", "--slots", "15", "--report_only",
        "--", "--config.seed=1", "2",
    ]


def test_learning_report_of_the_documented_command_line_holds_exactly_the_runs_it_names(tmp_path):
    # docs/RESULTS.md's command, tabulating finished runs instead of training them.
    for variant, slots in (("ssync", 7), ("ssync", 15), ("ssync", 11), ("base", 7)):
        run = pathlib.Path(learning.run_dir(str(tmp_path), variant, slots, seed=0))
        run.mkdir()
        (run / learning.TEST_JSON).write_text(json.dumps({metric: 0.5 for metric in learning.METRICS}))

    _run_module(
        "benchmarks.learning", "--root", str(tmp_path), "--variants", "ssync", "--seeds", "0", "--slots", "7", "15",
        "--report_only", "--", "--config.data.num_workers=0",
    )

    with (tmp_path / "learning.csv").open(newline="") as handle:
        runs = [(record["variant"], record["slots"], record["seed"]) for record in csv.DictReader(handle)]
    assert runs == [("ssync", "7", "0"), ("ssync", "15", "0")]


def _finished_run(root: pathlib.Path, variant: str, seed: int, curve: dict[int, float]) -> None:
    """A run directory as a study leaves it: test metrics, and every curve metric = value at each step."""
    run = pathlib.Path(learning.run_dir(str(root), variant, slots=7, seed=seed))
    run.mkdir()
    (run / learning.TEST_JSON).write_text(json.dumps({metric: 0.5 for metric in learning.METRICS}))
    history = [{"step": step, "image_fg_ari": 0.0, **{m: value for m in learning.CURVE_METRICS}} for step, value in curve.items()]
    (run / checkpoints.EVAL_HISTORY).write_text("".join(json.dumps(evaluation) + "\n" for evaluation in history))


def test_learning_curve_means_average_the_steps_every_run_evaluated():
    curves = {
        ("base", 11, 0): [{"step": 100, **{m: 0.1 for m in learning.CURVE_METRICS}},
                          {"step": 200, **{m: 0.3 for m in learning.CURVE_METRICS}}],
        ("base", 11, 1): [{"step": 200, **{m: 0.5 for m in learning.CURVE_METRICS}}],
        ("ssync", 11, 0): [{"step": 100, **{m: 0.2 for m in learning.CURVE_METRICS}}],
    }
    means = learning.mean_curves(curves)
    assert [e["step"] for e in means[("base", 11)]] == [200]
    assert means[("base", 11)][0]["enc_video_mbo"] == pytest.approx(0.4)
    assert means[("ssync", 11)] == [{"step": 100, **{m: 0.2 for m in learning.CURVE_METRICS}}]


def test_learning_report_prints_every_runs_validation_curve_and_plots_them(tmp_path):
    _finished_run(tmp_path, "base", 0, {100: 0.1, 200: 0.3})
    _finished_run(tmp_path, "base", 1, {100: 0.2, 200: 0.5})
    _finished_run(tmp_path, "ssync", 0, {100: 0.05, 200: 0.625})
    png = tmp_path / "plots" / "curves.png"

    result = _run_module(
        "benchmarks.learning", "--root", str(tmp_path), "--config", "configs/synthetic.py", "--seeds", "0", "1",
        "--report_only", "--plot", str(png),
    )

    curve_table = result.stdout.split("Learning curves (validation split, %)")[1].splitlines()[1:]
    curve_rows = [line for line in curve_table if not line.startswith("|---")]
    assert curve_rows[1:] == [
        "| base | 7 | 0 | 100 | 10.0 | 10.0 | 10.0 | 10.0 |",
        "| base | 7 | 0 | 200 | 30.0 | 30.0 | 30.0 | 30.0 |",
        "| base | 7 | 1 | 100 | 20.0 | 20.0 | 20.0 | 20.0 |",
        "| base | 7 | 1 | 200 | 50.0 | 50.0 | 50.0 | 50.0 |",
        "| ssync | 7 | 0 | 100 | 5.0 | 5.0 | 5.0 | 5.0 |",
        "| ssync | 7 | 0 | 200 | 62.5 | 62.5 | 62.5 | 62.5 |",
    ]
    assert curve_rows[0] == "| variant | slots | seed | step | " + " | ".join(learning.CURVE_METRICS) + " |"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_learning_runs_mode_plots_named_run_directories_and_names_a_missing_one(tmp_path):
    _finished_run(tmp_path, "base", 0, {100: 0.1, 200: 0.3})
    run = pathlib.Path(learning.run_dir(str(tmp_path), "base", slots=7, seed=0))
    (run / "config.json").write_text(json.dumps({"model": {"num_slots": 9}}))
    png = tmp_path / "candidates.png"

    result = _run_module("benchmarks.learning", "--root", str(tmp_path), "--runs", str(run), "--plot", str(png))

    rows = [line for line in result.stdout.splitlines() if line.startswith(f"| {run.name} |")]
    assert rows == [f"| {run.name} | 9 | 0 | 100 | 10.0 | 10.0 | 10.0 | 10.0 |", f"| {run.name} | 9 | 0 | 200 | 30.0 | 30.0 | 30.0 | 30.0 |"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = _run_module("benchmarks.learning", "--root", str(tmp_path), "--runs", str(tmp_path / "nope"), check=False)
    assert missing.returncode != 0 and "--runs" in missing.stderr and "no config.json" in missing.stderr


def _parsed_config(study: studies.Study, run: studies.Run):
    """The run's config as main.py parses its flags (ml_collections raises on a key the config lacks)."""
    argv = ["main.py", f"--config={run.config or study.config}:{run.variant}", *learning.study_overrides(study, run, "/root")]
    flag_values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", flag_values=flag_values, sys_argv=argv)
    flag_values(argv)
    return flag_values.config


def _keeps(config, step: int) -> bool:
    return step in config.keep_checkpoint_steps or config.num_train_steps == step or config.stop_after_step == step


@pytest.mark.parametrize("name", sorted(studies.STUDIES))
def test_every_study_run_sets_only_keys_its_config_has_and_branches_from_a_kept_checkpoint(name):
    # A misspelt override would only fail once the run starts, hours into a study: each run's flags
    # are parsed here as main.py parses them. A run branching from (or taking the backbone of) a run
    # of another study that shares its root (e.g. Table 7's bases that later studies continue) finds
    # that run there, keeping the step.
    study = studies.get(name)
    configs = {}
    for run in study.runs:
        configs[run.name] = _parsed_config(study, run)
        for source in (run.branch, run.backbone):
            if source is None:
                continue
            parent, step = source
            if parent in configs:
                assert _keeps(configs[parent], step), (name, run.name)
                continue
            elsewhere = [(other, r) for other in map(studies.get, studies.STUDIES) for r in other.runs if r.name == parent]
            assert elsewhere and all(_keeps(_parsed_config(*found), step) for found in elsewhere), (name, run.name)


def test_gradient_balance_on_the_authors_case_gives_their_losses_and_their_gradients_norm(tmp_path):
    # The committed fixture holds what the authors' code computed on this case: each loss, and the
    # gradient of the total (every term active) for each of their trainable tensors.
    out = tmp_path / "balance.json"
    result = _run_module(
        "benchmarks.gradient_balance", "--config", "configs/movi_c.py", "--authors_case", "small", "--json", str(out)
    )
    balance = json.loads(out.read_text())
    with np.load(_REPO / "tests" / "fixtures" / "authors_movi_c_small.npz") as reference:
        theirs = {name: float(reference[f"loss/{key}"]) for key, name in (
            ("loss_featrec", "reconstruction"), ("loss_ss", "slot_contrast"),
            ("loss_grp2deccls", "ssync_boundary"), ("loss_dec2grpcls", "ssync_interior"),
        )}  # fmt: skip
        their_norm = math.sqrt(sum(float(np.sum(reference[k].astype(np.float64) ** 2)) for k in reference.files
                                   if k.startswith("grad/")))  # fmt: skip
    for name, value in theirs.items():
        assert balance["terms"][name]["value"] == pytest.approx(value, rel=1e-4), name
    assert balance["total_norm"] == pytest.approx(their_norm, rel=1e-3)
    assert sum(term["share"] for term in balance["terms"].values()) == pytest.approx(1.0, abs=1e-6)
    # The frozen DINOv2 takes no gradient; the interior loss trains no decoder, the boundary loss no backbone.
    assert all(term["modules"]["backbone"] is None for term in balance["terms"].values())
    assert balance["terms"]["ssync_interior"]["modules"]["decoder"] == 0.0
    assert "weighted reconstruction / (boundary + interior) in value = 2.85" in result.stdout


def test_premise_floor_gives_each_patch_the_id_covering_most_of_it():
    from benchmarks import premise_floor

    ids = np.zeros((1, 1, 4, 4), np.int32)
    ids[0, 0, :2, :2] = 1  # The top-left patch wholly id 1.
    ids[0, 0, 2:, 2:] = [[2, 2], [2, 0]]  # Three quarters of the bottom-right patch id 2.
    ids[0, 0, :2, 2:] = [[3, 0], [0, 0]]  # A quarter of the top-right patch id 3: the patch stays 0.
    labels = np.argmax(np.asarray(premise_floor.ground_truth_logits(ids, (2, 2), 4)), axis=-1)
    np.testing.assert_array_equal(labels[0, 0], [[1, 0], [0, 2]])


def test_the_mechanism_table_reads_each_ssync_run_beside_its_base_twin_from_the_switch_on(tmp_path):
    study = studies.Study(config="configs/synthetic16_features.py", description="", runs=(
        studies.Run("base_slots7_seed0", "base"),
        studies.Run("ssync_slots7_seed0", "ssync", branch=("base_slots7_seed0", 4500)),
    ))  # fmt: skip
    for name, steps in (("base_slots7_seed0", (3000, 4500, 6000, 9000)), ("ssync_slots7_seed0", (6000, 7500, 9000))):
        (tmp_path / name).mkdir()
        history = [{"step": step, "dec_slots_used": step / 1000, "run": name} for step in steps]
        (tmp_path / name / checkpoints.EVAL_HISTORY).write_text("".join(json.dumps(e) + "\n" for e in history))
    rows = [(name, step, record["dec_slots_used"]) for name, step, record in learning.mechanism_rows(study, str(tmp_path))]
    assert rows == [
        ("base_slots7_seed0", 4500, 4.5),  # The switch-on: the SSync run starts from its twin's state there.
        ("ssync_slots7_seed0", 6000, 6.0), ("base_slots7_seed0", 6000, 6.0),
        ("ssync_slots7_seed0", 9000, 9.0), ("base_slots7_seed0", 9000, 9.0),
    ]  # fmt: skip
