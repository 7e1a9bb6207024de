"""Tests of the learning studies' tools (studies/): the learning tables and curves, the studies'
runs as main.py parses them, the gradient balance against the authors' code, and the premise floor.

The command lines that train nothing (tabulating and plotting finished runs) run as written in the
docs; a study's runs are parsed, not trained.
"""

import csv
import dataclasses
import importlib
import json
import math
import pathlib

import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags

from ssync_jax import checkpoints
from studies import learning, registry

from tests import commands

_REPO = pathlib.Path(__file__).resolve().parents[1]


def test_importing_the_studies_defines_no_flags():
    for name in ("gradient_balance", "learning", "premise_floor", "registry"):
        importlib.import_module(f"studies.{name}")
    defining = [module for module in flags.FLAGS.flags_by_module_dict() if module.startswith("studies.")]
    assert defining == []


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

    commands.run_module(
        "studies.learning", "--root", str(tmp_path), "--variants", "ssync", "--seeds", "0", "--slots", "7", "15",
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

    result = commands.run_module(
        "studies.learning", "--root", str(tmp_path), "--config", "configs/synthetic.py", "--seeds", "0", "1",
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

    result = commands.run_module("studies.learning", "--root", str(tmp_path), "--runs", str(run), "--plot", str(png))

    rows = [line for line in result.stdout.splitlines() if line.startswith(f"| {run.name} |")]
    assert rows == [f"| {run.name} | 9 | 0 | 100 | 10.0 | 10.0 | 10.0 | 10.0 |", f"| {run.name} | 9 | 0 | 200 | 30.0 | 30.0 | 30.0 | 30.0 |"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = commands.run_module("studies.learning", "--root", str(tmp_path), "--runs", str(tmp_path / "nope"), check=False)
    assert missing.returncode != 0 and "--runs" in missing.stderr and "no config.json" in missing.stderr


def _parsed_config(study: registry.Study, run: registry.Run):
    """The run's config as main.py parses its flags (ml_collections raises on a key the config lacks)."""
    argv = ["main.py", f"--config={run.config or study.config}:{run.variant}", *learning.study_overrides(study, run, "/root")]
    flag_values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", flag_values=flag_values, sys_argv=argv)
    flag_values(argv)
    return flag_values.config


def _keeps(config, step: int) -> bool:
    return step in config.keep_checkpoint_steps or config.num_train_steps == step or config.stop_after_step == step


@pytest.mark.parametrize("name", sorted(registry.STUDIES))
def test_every_study_run_sets_only_keys_its_config_has_and_branches_from_a_kept_checkpoint(name):
    # A misspelt override would only fail once the run starts, hours into a study: each run's flags
    # are parsed here as main.py parses them. A run branching from a run of another study that shares
    # its root (e.g. Table 7's bases that later studies continue) finds that run there, keeping the
    # step. A backbone taken from a path names one that is there.
    study = registry.get(name)
    configs = {}
    for run in study.runs:
        configs[run.name] = config = _parsed_config(study, run)
        # Where the orchestrator judges a run finished: main.py's own parse of its flags.
        parsed_end = config.num_train_steps if config.stop_after_step is None else min(config.stop_after_step, config.num_train_steps)
        assert learning.run_end(study, run) == parsed_end, (name, run.name)
        if config.model.encoder.get("backbone_from"):
            assert (_REPO / config.model.encoder.backbone_from).is_dir(), (name, run.name)
        if run.branch is None:
            continue
        parent, step = run.branch
        if parent in configs:
            assert _keeps(configs[parent], step), (name, run.name)
            continue
        elsewhere = [(other, r) for other in map(registry.get, registry.STUDIES) for r in other.runs if r.name == parent]
        assert elsewhere and all(_keeps(_parsed_config(*found), step) for found in elsewhere), (name, run.name)


def test_gradient_balance_on_the_authors_case_gives_their_losses_and_their_gradients_norm(tmp_path):
    # The committed fixture holds what the authors' code computed on this case: each loss, and the
    # gradient of the total (every term active) for each of their trainable tensors.
    out = tmp_path / "balance.json"
    result = commands.run_module(
        "studies.gradient_balance", "--config", "configs/movi_c.py", "--authors_case", "small", "--json", str(out)
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
    from studies import premise_floor

    ids = np.zeros((1, 1, 4, 4), np.int32)
    ids[0, 0, :2, :2] = 1  # The top-left patch wholly id 1.
    ids[0, 0, 2:, 2:] = [[2, 2], [2, 0]]  # Three quarters of the bottom-right patch id 2.
    ids[0, 0, :2, 2:] = [[3, 0], [0, 0]]  # A quarter of the top-right patch id 3: the patch stays 0.
    labels = np.argmax(np.asarray(premise_floor.ground_truth_logits(ids, (2, 2), 4)), axis=-1)
    np.testing.assert_array_equal(labels[0, 0], [[1, 0], [0, 2]])


def test_the_mechanism_table_reads_each_ssync_run_beside_its_base_twin_from_the_switch_on(tmp_path):
    study = registry.Study(config="studies/configs/synthetic16_features.py", description="", runs=(
        registry.Run("base_slots7_seed0", "base"),
        registry.Run("ssync_slots7_seed0", "ssync", branch=("base_slots7_seed0", 4500)),
        # Branched from the same twin: one counting its steps afresh (the factor study's trainable arm),
        # one not begun. Neither adds rows, nor repeats the twin's.
        registry.Run("trainable_ssync_slots7_seed0", "ssync", branch=("base_slots7_seed0", 4500)),
        registry.Run("other_ssync_slots7_seed0", "ssync", branch=("base_slots7_seed0", 4500)),
    ))  # fmt: skip
    runs = (("base_slots7_seed0", (3000, 4500, 6000, 9000)), ("ssync_slots7_seed0", (6000, 7500, 9000)),
            ("trainable_ssync_slots7_seed0", (1500, 3000, 4500)))  # fmt: skip
    for name, steps in runs:
        (tmp_path / name).mkdir()
        history = [{"step": step, "dec_slots_used": step / 1000, "run": name} for step in steps]
        (tmp_path / name / checkpoints.EVAL_HISTORY).write_text("".join(json.dumps(e) + "\n" for e in history))
    rows = [(name, step, record["dec_slots_used"]) for name, step, record in learning.mechanism_rows(study, str(tmp_path))]
    assert rows == [
        ("base_slots7_seed0", 4500, 4.5),  # The switch-on: the SSync run starts from its twin's state there.
        ("ssync_slots7_seed0", 6000, 6.0), ("base_slots7_seed0", 6000, 6.0),
        ("ssync_slots7_seed0", 9000, 9.0), ("base_slots7_seed0", 9000, 9.0),
    ]  # fmt: skip


def _study_run(root: pathlib.Path, name: str, variant: str, steps: tuple[int, ...], finished_in: str | None) -> None:
    """A study's run directory as training leaves it: its config, curve (every metric = step / 10^5),
    panels, an events file and a checkpoint (neither of which a record keeps)."""
    config = importlib.import_module("studies.configs.synthetic16_features").get_config(variant)
    run = root / name
    (run / "checkpoints" / str(steps[-1])).mkdir(parents=True)
    (run / "config.json").write_text(config.to_json_best_effort())
    history = [{"step": step, **{m: step / 1e5 for m in learning.CURVE_METRICS}} for step in steps]
    (run / checkpoints.EVAL_HISTORY).write_text("".join(json.dumps(e) + "\n" for e in history))
    (run / learning.PANELS_JSON).write_text(json.dumps({"ssync/boundary_fraction": {str(s): s / 1e5 for s in steps}}))
    (run / "events.out.tfevents.1.host").write_bytes(b"\0" * 64)
    if finished_in:
        (run / learning.FINISHED.format(finished_in)).write_text("{}")


def test_records_keep_only_finished_runs_small_files_and_report_each_run_at_the_studys_step(tmp_path, capsys):
    # A factor table reads every run at step 9,000, also a run that Table 7 has since trained to 15,000.
    study = registry.Study(config="studies/configs/synthetic16_features.py", description="", test=False,
                           report_step=9000, name="factors", runs=(
        registry.Run("base", "base"),
        registry.Run("ssync", "ssync", branch=("base", 4500)),
        registry.Run("unfinished", "base"),
    ))  # fmt: skip
    root, records = tmp_path / "root", tmp_path / "records"
    _study_run(root, "base", "base", (4500, 9000, 10500, 15000), finished_in="factors")
    _study_run(root, "ssync", "ssync", (6000, 7500, 9000, 12000), finished_in="factors")
    _study_run(root, "unfinished", "base", (1500,), finished_in=None)

    assert learning.save_records(study, str(root), str(records)) == ["base", "ssync"]
    assert sorted(p.name for p in (records / "base").iterdir()) == sorted(
        ["config.json", "eval_history.jsonl", "panels.json", "study_factors.json"]
    )
    assert not (records / "unfinished").exists()

    learning.report_study(study, str(records), str(tmp_path / "curves.png"), str(tmp_path / "table.csv"))
    with (tmp_path / "table.csv").open(newline="") as handle:
        rows = {row["run"]: row for row in csv.DictReader(handle)}
    assert {name: (row["last_step"], float(row["val_video_fg_ari"])) for name, row in rows.items()} == {
        "base": ("9000", 0.09), "ssync": ("9000", 0.09)
    }
    assert rows["ssync"]["ssync_on_at"] == "4500"
    # The training panels' last column too: the boundary fraction logged at 9,000 (0.09), not at 12,000.
    panel_row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| ssync |") and " / " in line)
    assert panel_row.rstrip(" |").endswith("0.09 / – / – / –")
    # Table 7 trains these runs on to 15,000: until it has, its table does not list another study's result.
    table7 = registry.Study(config=study.config, description="", name="table7", runs=study.runs)
    learning.report_study(table7, str(records), str(tmp_path / "curves7.png"), str(tmp_path / "table7.csv"))
    assert not (tmp_path / "table7.csv").exists()  # No run of its own: no table.
    (records / "base" / learning.FINISHED.format("table7")).write_text("{}")
    learning.report_study(table7, str(records), str(tmp_path / "curves7.png"), str(tmp_path / "table7.csv"))
    assert [line.split(",")[0] for line in (tmp_path / "table7.csv").read_text().splitlines()[1:]] == ["base"]
    assert learning.read_panels(str(records / "ssync")) == {"ssync/boundary_fraction": {6000: 0.06, 7500: 0.075, 9000: 0.09, 12000: 0.12}}


def test_a_reports_curves_stop_at_its_step_and_draw_a_params_only_branch_from_its_branch_point(tmp_path, capsys):
    # The factor study reads every run at 9,000: its curves too, though Table 7 trained its base to 15,000;
    # the trainable arm restarts its step count at its branch (4,500), so its own step 4,500 is 9,000.
    study = registry.Study(config="studies/configs/synthetic16_features.py", description="", test=False,
                           report_step=9000, name="factors", runs=(
        registry.Run("base", "base"),
        registry.Run("trainable", "base", branch=("base", 4500)),
    ))  # fmt: skip
    _study_run(tmp_path, "base", "base", (4500, 9000, 15000), finished_in="factors")
    _study_run(tmp_path, "trainable", "base", (1500, 4500), finished_in="factors")
    config = json.loads((tmp_path / "trainable" / "config.json").read_text())
    (tmp_path / "trainable" / "config.json").write_text(json.dumps({**config, "init_from_params_only": True}))

    learning.report_study(study, str(tmp_path), str(tmp_path / "curves.png"), str(tmp_path / "table.csv"))
    curve_rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()
                  if line.startswith(("| base | ", "| trainable | ")) and line.count("|") == 4 + len(learning.CURVE_METRICS) + 1]  # fmt: skip
    assert [(row[0].lstrip("| "), int(row[3]), float(row[4])) for row in curve_rows] == [
        ("base", 4500, 4.5), ("base", 9000, 9.0), ("trainable", 6000, 1.5), ("trainable", 9000, 4.5)
    ]
    with (tmp_path / "table.csv").open(newline="") as handle:  # The table keeps the run's own last step.
        assert {row["run"]: row["last_step"] for row in csv.DictReader(handle)} == {"base": "9000", "trainable": "4500"}


def test_a_runs_record_is_replaced_whole_by_a_later_training_of_it_with_every_study_it_finished(tmp_path):
    # The record of an earlier training of "base" (another day's machine) holds a test result and the
    # marker of a study the new training has not finished: neither may be read as the new run's.
    study = registry.Study(config="studies/configs/synthetic16_features.py", description="", test=False, name="factors",
                           runs=(registry.Run("base", "base"),))  # fmt: skip
    root, records = tmp_path / "root", tmp_path / "records"
    (records / "base").mkdir(parents=True)
    for name in ("test_metrics.json", "study_table7.json", "eval_history.jsonl"):
        (records / "base" / name).write_text("{}")
    _study_run(root, "base", "base", (4500, 9000), finished_in="factors")
    (root / "base" / learning.FINISHED.format("premise")).write_text("{}")  # It also finished another study.

    assert learning.save_records(study, str(root), str(records)) == ["base"]
    assert sorted(p.name for p in (records / "base").iterdir()) == sorted(
        ["config.json", "eval_history.jsonl", "panels.json", "study_factors.json", "study_premise.json"]
    )
    assert [json.loads(line)["step"] for line in (records / "base" / "eval_history.jsonl").read_text().splitlines()] == [4500, 9000]
    assert sorted(p.name for p in records.iterdir()) == ["base"]  # No staging directory left behind.


def _checkpoint(workdir: pathlib.Path, step: int) -> None:
    (workdir / "checkpoints" / str(step) / "state").mkdir(parents=True)
    (workdir / "checkpoints" / str(step) / "state" / "params").write_text(f"state at {step}")


def test_a_carry_keeps_unfinished_runs_and_branch_points_still_needed_and_resumes_them(tmp_path):
    study = registry.Study(config="studies/configs/synthetic16_features.py", description="", name="table7", runs=(
        registry.Run("base", "base"),
        registry.Run("ssync", "ssync", branch=("base", 4500)),
        registry.Run("done", "base"),
        registry.Run("other_base", "base"),
        registry.Run("other_ssync", "ssync", branch=("other_base", 4500)),
        registry.Run("stopped_base", "base"),  # Finished at its stop; an arm not yet begun branches from it.
        registry.Run("arm", "base", branch=("stopped_base", 4500)),
    ))  # fmt: skip
    root, carry = tmp_path / "root", tmp_path / "carry"
    _study_run(root, "stopped_base", "base", (4500, 9000), finished_in="table7")
    for step in (4500, 9000):
        _checkpoint(root / "stopped_base", step)
    _study_run(root, "base", "base", (1500, 3000, 4500, 6000), finished_in=None)
    for step in (4500, 6000):
        _checkpoint(root / "base", step)
    (root / "base" / "checkpoints" / "7500.orbax-checkpoint-tmp-1").mkdir()  # Being written when stopped.
    _study_run(root, "other_base", "base", (4500, 15000), finished_in=None)
    for step in (4500, 15000):
        _checkpoint(root / "other_base", step)
    _study_run(root, "other_ssync", "ssync", (6000,), finished_in=None)  # Begun: its own checkpoint.
    _study_run(root, "done", "base", (15000,), finished_in="table7")
    (carry / "done").mkdir(parents=True)  # Kept by an earlier session, finished since.

    kept = ["base", "other_base", "other_ssync", "stopped_base"]
    assert learning.save_carry(study, str(root), str(carry)) == kept
    # The twin of "base" has not begun: its branch point goes too. "other_ssync" has begun: only the latest.
    assert sorted(p.name for p in (carry / "base" / "checkpoints").iterdir()) == ["4500", "6000"]
    assert sorted(p.name for p in (carry / "other_base" / "checkpoints").iterdir()) == ["15000"]
    assert sorted(p.name for p in (carry / "stopped_base" / "checkpoints").iterdir()) == ["4500", "9000"]
    assert (carry / "base" / "checkpoints" / "6000" / "state" / "params").read_text() == "state at 6000"
    assert {"config.json", "eval_history.jsonl", "events.out.tfevents.1.host"} <= {p.name for p in (carry / "base").iterdir()}
    assert sorted(p.name for p in carry.iterdir()) == kept  # "done" gone.

    # A later session, a fresh root: every kept run comes back; a run the root holds trained stays.
    later = tmp_path / "later"
    _study_run(later, "other_base", "base", (4500, 16500), finished_in=None)
    assert learning.restore_carry(study, str(later), str(carry)) == ["base", "other_ssync", "stopped_base"]
    assert learning.checkpoint_steps(str(later / "stopped_base")) == [4500, 9000]
    assert learning.checkpoint_steps(str(later / "base")) == [4500, 6000]
    assert learning.checkpoint_steps(str(later / "other_base")) == [16500]
    assert (later / "base" / "eval_history.jsonl").read_text() == (root / "base" / "eval_history.jsonl").read_text()

    # Once the arm has begun, the finished run's carry goes.
    _study_run(later, "arm", "base", (6000,), finished_in=None)
    _checkpoint(later / "arm", 6000)
    assert "stopped_base" not in learning.save_carry(study, str(later), str(carry))
    assert not (carry / "stopped_base").exists()


def test_a_carry_with_only_touches_its_own_runs(tmp_path):
    # Two processes, one per core, each with --only: neither copies nor removes the other's runs.
    study = registry.Study(config="studies/configs/synthetic16_features.py", description="", name="table7", runs=(
        registry.Run("mine", "base"), registry.Run("theirs", "base"), registry.Run("theirs_done", "base"),
    ))  # fmt: skip
    root, carry = tmp_path / "root", tmp_path / "carry"
    for name, finished_in in (("mine", None), ("theirs", None), ("theirs_done", "table7")):
        _study_run(root, name, "base", (1500, 3000), finished_in=finished_in)
        _checkpoint(root / name, 3000)
    (carry / "theirs_done").mkdir(parents=True)  # The other process removes it when it ends.

    assert learning.save_carry(study, str(root), str(carry), names={"mine"}) == ["mine"]
    assert sorted(p.name for p in carry.iterdir()) == ["mine", "theirs_done"]
    assert learning.save_carry(study, str(root), str(carry)) == ["mine", "theirs"]  # Without --only: every run.
    assert sorted(p.name for p in carry.iterdir()) == ["mine", "theirs"]


def test_a_run_stopped_before_its_end_is_neither_tested_nor_marked_finished(tmp_path, monkeypatch):
    study = registry.Study(config="studies/configs/synthetic16_features.py", description="", name="table7", test=True,
                           overrides=("--config.num_train_steps=9000",), runs=(registry.Run("base", "base"),))  # fmt: skip
    commands_run = []

    def fake_main(command, check):  # main.py stopped by a SIGTERM at step 6,000 (a clean exit).
        commands_run.append(command)
        _study_run(tmp_path, "base", "base", (3000, 6000), finished_in=None)

    monkeypatch.setattr(learning.subprocess, "run", fake_main)
    assert learning.train_study_run(study, study.runs[0], str(tmp_path)) is False
    assert len(commands_run) == 1 and "--mode=train_and_eval" in commands_run[0]  # No test evaluation.
    assert not (tmp_path / "base" / learning.FINISHED.format("table7")).exists()


def test_a_run_another_study_trained_past_this_ones_end_is_finished_at_its_end_without_training(tmp_path, monkeypatch):
    # Table 7 retrained a factor run's SSync twin from its branch to 15,000: the factor study (stop at 9,000)
    # reads it at 9,000 and trains nothing; a study with a test split cannot read its test at 9,000.
    stop = ("--config.stop_after_step=9000",)
    factors = registry.Study(config="studies/configs/synthetic16_features.py", description="", name="factors", test=False,
                             runs=(registry.Run("twin", "ssync", stop, branch=("base", 4500)),))  # fmt: skip
    _study_run(tmp_path, "twin", "ssync", (6000, 9000, 12000, 15000), finished_in="table7")
    (tmp_path / "twin" / "events.out.tfevents.1.host").unlink()  # Not a real one: its panels are in panels.json.
    run = learning.subprocess.run

    def no_main(command, *args, **kwargs):  # TensorFlow, imported for the panels, runs commands of its own.
        assert "main.py" not in command, "main.py was run"
        return run(command, *args, **kwargs)

    monkeypatch.setattr(learning.subprocess, "run", no_main)
    monkeypatch.setattr(learning, "_wait_for_checkpoint", lambda *args: pytest.fail("waited for the branch point"))

    assert learning.train_study_run(factors, factors.runs[0], str(tmp_path)) is True
    marker = json.loads((tmp_path / "twin" / learning.FINISHED.format("factors")).read_text())
    assert marker["validation"]["step"] == 9000 and marker["validation"]["video_fg_ari"] == 0.09
    tested = dataclasses.replace(factors, name="tested", test=True)
    with pytest.raises(SystemExit, match="twin was trained past this study's end"):
        learning.train_study_run(tested, tested.runs[0], str(tmp_path))


def test_panels_come_from_the_events_where_a_run_has_them_and_from_its_record_where_it_has_none(tmp_path):
    # A run finished by one study (panels.json written at step 100) and trained on by another: its
    # events hold the later steps too, and they are what a report of the run directory reads.
    from ssync_jax import logs

    logs.import_tensorflow_quietly()
    import tensorflow as tf

    run, record = tmp_path / "run", tmp_path / "record"
    writer = tf.summary.create_file_writer(str(run))
    with writer.as_default():
        for step, value in ((100, 0.25), (200, 0.5)):
            tf.summary.scalar("ssync/boundary_fraction", value, step=step)
    writer.close()
    (run / learning.PANELS_JSON).write_text(json.dumps({"ssync/boundary_fraction": {"100": 0.25}}))
    record.mkdir()
    (record / learning.PANELS_JSON).write_text((run / learning.PANELS_JSON).read_text())

    assert learning.read_panels(str(run)) == {"ssync/boundary_fraction": {100: 0.25, 200: 0.5}}
    assert learning.read_panels(str(record)) == {"ssync/boundary_fraction": {100: 0.25}}
