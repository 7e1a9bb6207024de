"""Smoke tests of the benchmark scripts (no timing assertions: the figures are what the scripts print).

benchmarks/data.py's measurement functions run at smoke-test sizes and give one positive rate per
setting; benchmarks/objective_scaling.py re-plots a hand-written 3-row CSV into a PNG whose legend
exponents are the log-log least-squares slopes. The command line of the benchmark that runs
without measuring anything (re-plotting) runs as written in the docs. benchmarks/loop_speed.py's
timer, passed to the training loop as its hook, times every part of the dispatches after its
warm-up. The studies' tests are in tests/test_studies.py.
"""

import csv
import dataclasses
import importlib
import math
import pathlib
import re

import numpy as np
import pytest
from absl import flags

from benchmarks import data, loop_speed, objective_scaling
from tests import commands, tiny_train_config

_MACHINE = "2-core CPU (test)"
_REPO = pathlib.Path(__file__).resolve().parents[1]


def test_importing_the_benchmarks_defines_no_flags():
    # data.py imports generator.py and pipeline.py, so their flags would be its dead flags.
    # (tfds_synthetic_movi.py still defines its flags at import.)
    names = (
        "attention",
        "data",
        "generator",
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
    result = commands.run_module("benchmarks.matmul", "--rows", "256", "--width", "64", "--repeats", "1")
    products = [line for line in result.stdout.splitlines() if line.startswith("    ") and "@" in line]
    layers = [line for line in result.stdout.splitlines() if "x float32" in line]
    assert len(products) == 9 and len(layers) == 3
    assert all(float(line.split()[-1]) > 0 for line in products)
    assert layers[0].split()[-2] == "1.00x"  # float32 against itself


def test_attention_report_prints_both_forms_and_the_vit_rate_in_both_dtypes():
    result = commands.run_module("benchmarks.attention", "--frames", "1", "--depth", "1", "--repeats", "1")
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

    result = commands.run_module(
        "benchmarks.objective_scaling", "--from_csv", str(table), "--plot", str(png), "--csv", str(measured)
    )

    assert "SSync time 1.00, memory 1.00" in result.stdout
    assert "SRL   time 2.00, memory 2.00" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not measured.exists()


@pytest.mark.slow  # Moved out of the quick suite (>20 s on 2 cores); CI runs it in the slow command.
def test_loop_timer_times_each_part_of_the_dispatches_after_the_warm_up_through_the_loop_hook(tmp_path):
    config = tiny_train_config.get_config()
    config.data.data_dir = str(tmp_path)
    config.log_every_steps = 2
    # Three dispatches of 2 steps: the first is the warm-up, the other two are timed.
    rate, timer = loop_speed.loop_speed(config, steps=4, warmup_steps=2, steps_per_dispatch=2)
    assert timer.steps == 4
    assert set(timer.seconds) == set(loop_speed.PARTS)
    assert rate > 0 and all(seconds >= 0 for seconds in timer.seconds.values())
