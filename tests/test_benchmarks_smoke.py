"""Smoke tests of the benchmark scripts (no timing assertions: the figures are what the scripts print).

benchmarks/data.py's measurement functions run at smoke-test sizes and give one positive rate per
setting; benchmarks/objective_scaling.py re-plots a hand-written 3-row CSV into a PNG whose legend
exponents are the log-log least-squares slopes.
"""

import csv
import dataclasses
import math

import numpy as np
import pytest

from benchmarks import data, objective_scaling

_MACHINE = "2-core CPU (test)"


def test_pipeline_settings_are_the_movi_c_and_default_training_shapes():
    movi_c, default = data.pipeline_settings()
    assert (movi_c.batch_size, movi_c.chunk_length, movi_c.image_size, movi_c.normalization) == (
        64, 4, 336, "imagenet"
    )
    assert (movi_c.source_size, movi_c.workers) == (128, (0, 2))
    assert (default.batch_size, default.chunk_length, default.image_size, default.normalization) == (
        8, 4, 64, "zero_one"
    )
    assert (default.source_size, default.source_frames, default.workers) == (64, 24, (0,))


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
    for row in batched:
        assert row.videos_per_second == pytest.approx(2 * row.batches_per_second)
        assert row.shape.startswith("2 x 4 x 32²")

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
    from benchmarks import learning

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
