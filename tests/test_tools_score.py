"""Every evaluation protocol in one table (`ssync_jax.tools.score`).

Each protocol's scores are checked against an independent computation (sklearn's
`adjusted_rand_score`, numpy loops for mBO and scipy's `linear_sum_assignment` for mIoU, resizes
written out here) on hand-made masks and labels; the `ssync` row against `python main.py --mode eval`'s
evaluator with the authors' settings on the tiny generated dataset; the CLI end to end on a tiny
workdir of a randomly initialised model.
"""

import csv
import json
import os
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
import scipy.optimize
from sklearn.metrics import adjusted_rand_score

from ssync_jax import checkpoints, evaluate, run_record, sharding, train_state
from ssync_jax.data import movi
from ssync_jax.models import build_model
from ssync_jax.tools import score as protocols_tool
from tests import tiny_train_config

pytestmark = pytest.mark.usefixtures("compilation_cache")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_INPUT = (8, 8)
# What each project's code does (see the tool's docstring for the files): where masks are compared
# (None: the labels' own resolution), FG-ARI of a video / a frame without objects, first frame dropped.
CONVENTIONS = {
    "ssync": (MODEL_INPUT, "one", "one", False),
    "videosaur": ((224, 224), "one", "one", False),
    "dinosaur": ((320, 320), "one", "one", False),
    "dinosaur_movi": (None, "one", "one", False),
    "savi": (None, "one", "skip", False),
    "savi_first_frame_dropped": (None, "one", "skip", True),
}


# ---------------------------------------------------------------------------------------------
# The independent computation: numpy resizes, sklearn ARI, numpy/scipy overlaps.


def nearest_exact(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """torch's `interpolate(mode="nearest-exact")` of [..., h, w] ids: output i reads floor((i + 0.5) * in / out)."""
    rows = np.floor((np.arange(size[0]) + 0.5) * labels.shape[-2] / size[0]).astype(int)
    cols = np.floor((np.arange(size[1]) + 0.5) * labels.shape[-1] / size[1]).astype(int)
    return labels[..., rows, :][..., cols]


def bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
    """[out, in] weights of torch's bilinear `interpolate` (half-pixel centres, edges clamped, no antialias)."""
    source = np.clip((np.arange(out_size) + 0.5) * in_size / out_size - 0.5, 0, in_size - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, in_size - 1)
    matrix = np.zeros((out_size, in_size))
    np.add.at(matrix, (np.arange(out_size), low), 1 - (source - low))
    np.add.at(matrix, (np.arange(out_size), high), source - low)
    return matrix


def predicted_ids(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[B, T, h, w, S] masks -> [B, T, H, W] argmax of their bilinear resize."""
    rows, cols = bilinear_matrix(masks.shape[2], size[0]), bilinear_matrix(masks.shape[3], size[1])
    return np.einsum("oh,bthws,pw->btops", rows, masks.astype(np.float64), cols).argmax(-1)


def fg_ari_or_none(true: np.ndarray, pred: np.ndarray, without: str) -> float | None:
    """sklearn's ARI over the foreground pixels; 1 or None (skipped) without any."""
    foreground = true > 0
    if not foreground.any():
        return 1.0 if without == "one" else None
    return adjusted_rand_score(true[foreground], pred[foreground])


def overlaps(true: np.ndarray, pred: np.ndarray, num_slots: int) -> np.ndarray | None:
    """IoU [objects present, slots] of each object (id > 0) with each predicted segment; None without objects."""
    objects = [k for k in np.unique(true) if k > 0]
    if not objects:
        return None
    iou = np.zeros((len(objects), num_slots))
    for row, k in enumerate(objects):
        for slot in range(num_slots):
            inter = np.sum((true == k) & (pred == slot))
            union = np.sum((true == k) | (pred == slot))
            iou[row, slot] = inter / union
    return iou


def mean_or_none(values: list[float | None]) -> float | None:
    kept = [value for value in values if value is not None]
    return float(np.mean(kept)) if kept else None


def expected_row(labels, masks, valid, size, video_without, frame_without, drop_first, num_slots) -> dict:
    """Every column for one kind of masks (no prefix), from the definitions."""
    true = nearest_exact(labels, size)
    pred = predicted_ids(masks, size)
    if drop_first:
        true, pred = true[:, 1:], pred[:, 1:]
    columns = {name: [] for name in protocols_tool.COLUMNS}
    for video in np.flatnonzero(valid):
        units = {"video": [(true[video], pred[video])], "image": list(zip(true[video], pred[video]))}
        for level, pairs in units.items():
            for t, p in pairs:
                without = video_without if level == "video" else frame_without
                columns[f"{level}_fg_ari"].append(fg_ari_or_none(t, p, without))
                iou = overlaps(t, p, num_slots)
                columns[f"{level}_mbo"].append(None if iou is None else iou.max(1).mean())
                if iou is None:
                    columns[f"{level}_miou"].append(None)
                else:
                    rows, cols = scipy.optimize.linear_sum_assignment(iou, maximize=True)
                    columns[f"{level}_miou"].append(iou[rows, cols].sum() / len(iou))
        columns["video_ari"].append(adjusted_rand_score(true[video].ravel(), pred[video].ravel()))
    return {name: mean_or_none(values) for name, values in columns.items()}


# ---------------------------------------------------------------------------------------------
# Hand-made masks and labels.


def scorer_results(protocol_names, labels, valid, dec_masks, enc_attn, chunk: int = 2) -> dict:
    scorer = evaluate.ProtocolScorer(
        [evaluate.PROTOCOLS[name] for name in protocol_names],
        model_input=MODEL_INPUT,
        num_true=int(labels.max()) + 1,
        num_pred=dec_masks.shape[-1],
        mesh=sharding.make_mesh(),
    )
    frames = labels.shape[1]
    chunks = [(dec_masks[:, s : s + chunk], enc_attn[:, s : s + chunk]) for s in range(0, frames, chunk)]
    scorer.add(labels, valid, chunks)
    return scorer.results()


def as_optional(value: float) -> float | None:
    return None if np.isnan(value) else value


def test_the_protocol_table_says_what_each_projects_code_does():
    assert list(evaluate.PROTOCOLS) == list(CONVENTIONS)
    for name, (size, video_without, frame_without, drop_first) in CONVENTIONS.items():
        protocol = evaluate.PROTOCOLS[name]
        assert evaluate.scoring_size(protocol, (6, 10), MODEL_INPUT) == (size or (6, 10)), name
        assert (protocol.video_without_foreground, protocol.frame_without_foreground) == (video_without, frame_without)
        assert protocol.drop_first_frame == drop_first


def test_every_protocol_matches_sklearn_and_numpy_loops_on_hand_made_masks():
    # 3 videos of 3 frames, labels 6x6 with ids 0..3: video 0 loses its objects in frame 2; video 1's
    # first frame is unlike the others (dropping it changes the scores); video 2 is padding, with
    # labels that would change every score if they counted.
    rng = np.random.default_rng(0)
    labels = np.zeros((3, 3, 6, 6), np.int64)
    labels[0, :2, 1:4, 1:3] = 1
    labels[0, 0, 3:6, 3:6] = 2
    labels[0, 1, 0:2, 4:6] = 3
    labels[1, 0, :, :3] = 1
    labels[1, 1:, 2:5, 2:5] = 2
    labels[1, 1:, 0, :] = 3
    labels[2] = rng.integers(0, 4, (3, 6, 6))
    valid = np.array([True, True, False])
    # Masks on a 3x3 decoder grid and a 2x2 encoder grid, 4 slots, positive and summing to 1.
    dec_masks = rng.dirichlet(np.ones(4), (3, 3, 3, 3)).astype(np.float32)
    enc_attn = rng.dirichlet(np.ones(4), (3, 3, 2, 2)).astype(np.float32)

    got = scorer_results(list(CONVENTIONS), labels, valid, dec_masks, enc_attn)

    for name, (size, video_without, frame_without, drop_first) in CONVENTIONS.items():
        size = size or labels.shape[2:]
        for prefix, masks in (("", dec_masks), ("enc_", enc_attn)):
            expected = expected_row(labels, masks, valid, size, video_without, frame_without, drop_first, 4)
            for column, value in expected.items():
                actual = as_optional(got[name][prefix + column])
                assert (actual is None) == (value is None), (name, prefix + column, actual, value)
                if value is not None:
                    np.testing.assert_allclose(actual, value, rtol=1e-5, atol=1e-6, err_msg=f"{name} {prefix}{column}")
    # The hand-made case does exercise the conventions: an empty frame counts under ssync, not under
    # savi; the first frame matters; the resolution matters.
    assert got["ssync"]["image_fg_ari"] != got["dinosaur_movi"]["image_fg_ari"]  # 8x8 vs 6x6 labels.
    assert got["dinosaur_movi"]["image_fg_ari"] != got["savi"]["image_fg_ari"]  # Empty frame: 1 vs skipped.
    assert got["savi"]["video_fg_ari"] != got["savi_first_frame_dropped"]["video_fg_ari"]


def test_a_frame_without_objects_scores_one_or_is_skipped_and_the_first_frame_can_be_dropped():
    # One video of 2 frames at 4x4: frame 0 holds two objects (6 and 2 pixels), frame 1 none. Every
    # pixel is predicted as slot 1, so frame 0's two objects are merged: FG-ARI 0, IoUs 6/16 and 2/16.
    labels = np.zeros((1, 2, 4, 4), np.int64)
    labels[0, 0, :2, 1:4] = 1
    labels[0, 0, 3, :2] = 2
    masks = np.broadcast_to(np.float32([0.1, 0.7, 0.2]), (1, 2, 2, 2, 3)).copy()
    names = ["ssync", "savi", "savi_first_frame_dropped"]
    got = scorer_results(names, labels, np.array([True]), masks, masks)

    assert got["ssync"]["image_fg_ari"] == pytest.approx((0.0 + 1.0) / 2)  # The empty frame scores 1.
    assert got["savi"]["image_fg_ari"] == pytest.approx(0.0)  # ... or is skipped.
    assert got["savi"]["video_fg_ari"] == pytest.approx(0.0)
    assert got["savi"]["image_mbo"] == got["ssync"]["image_mbo"] == pytest.approx((6 / 16 + 2 / 16) / 2)
    assert got["savi"]["video_miou"] == pytest.approx((6 / 32 + 0.0) / 2)  # One segment: one object matched.
    # Without frame 0 nothing but background is left: the video scores FG-ARI 1 (SAVi's code), the
    # frame is skipped, and there is no object for mBO or mIoU.
    dropped = got["savi_first_frame_dropped"]
    assert dropped["video_fg_ari"] == 1.0 and dropped["video_ari"] == 1.0
    assert all(np.isnan(dropped[name]) for name in ("image_fg_ari", "video_mbo", "image_mbo", "video_miou"))


def test_protocol_names_and_bad_inputs_give_errors_that_say_the_fix():
    assert [p.name for p in evaluate.select_protocols("savi, ssync")] == ["savi", "ssync"]
    assert len(evaluate.select_protocols("all")) == len(CONVENTIONS)
    with pytest.raises(ValueError, match="unknown \\['sav'\\]; use 'all' or some of ssync, videosaur"):
        evaluate.select_protocols("ssync,sav")
    labels = np.zeros((1, 1, 4, 4), np.int64)
    masks = np.ones((1, 1, 2, 2, 3), np.float32)
    with pytest.raises(ValueError, match="leave savi_first_frame_dropped out of --protocols"):
        scorer_results(["savi_first_frame_dropped"], labels, np.array([True]), masks, masks)
    labels[0, 0, 0, 0] = 11
    with pytest.raises(ValueError, match="object id 11, but config.eval.num_true_ids=4"):
        evaluate.ProtocolScorer(
            [evaluate.PROTOCOLS["ssync"]], model_input=(4, 4), num_true=4, num_pred=3, mesh=sharding.make_mesh()
        ).add(labels, np.array([True]), [(masks, masks)])


def test_the_tables_show_percentages_a_dash_where_nothing_counted_and_fit_100_columns():
    protocols = [evaluate.PROTOCOLS["ssync"], evaluate.PROTOCOLS["savi_first_frame_dropped"]]
    results = {
        "ssync": {name: 0.5 for name in protocols_tool.NAMES},
        "savi_first_frame_dropped": {name: float("nan") for name in protocols_tool.NAMES},
    }
    rows = protocols_tool.result_rows(results, protocols, {"ssync": (336, 336), "savi_first_frame_dropped": (128, 128)})
    header = protocols_tool.table_header("workdirs/a", 1000, "test", 250)
    lines = protocols_tool.markdown_table(rows, header).splitlines()
    assert lines[:2] == ["workdirs/a at step 1000: test split, 250 videos.",
                         "Scores in %. FG-ARI leaves the background out (ARI+bg keeps it); vid: over all frames of a"]
    assert "| ssync | SSync, SlotContrast (authors' code) | 336x336 | all | FG-ARI 1 |" in lines
    assert "| savi_first_frame_dropped | SAVi (paper) | 128x128 | 2..T | videos FG-ARI 1, frames skipped |" in lines
    assert lines.index("decoder masks, %:") < lines.index("encoder slot attention, %:")
    scores = [line for line in lines if line.startswith(("| ssync | 50.0", "| savi_first_frame_dropped | –"))]
    assert scores == ["| ssync | " + " | ".join(["50.0"] * 7) + " |", "| savi_first_frame_dropped | " + " | ".join(["–"] * 7) + " |"] * 2
    assert max(len(line) for line in lines) < 100


# ---------------------------------------------------------------------------------------------
# A model on the tiny generated dataset: the `ssync` row is what `main.py --mode eval` reports.


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    directory = str(tmp_path_factory.mktemp("tfds"))
    movi.data_source(tiny_train_config.DATASET, "validation", directory)  # Generates it on first use.
    return directory


@pytest.fixture(scope="module")
def tiny(data_dir, tmp_path_factory):
    """The tiny config with the authors' evaluation settings, a randomly initialised model saved as a
    workdir (config.json, a step-1 checkpoint) and as a params checkpoint."""
    config = tiny_train_config.get_config()
    config.data.data_dir = data_dir
    config.data.eval_resolution = "model_input"
    config.eval.fg_ari_without_foreground = "one"
    mesh = sharding.make_mesh()
    model = build_model(config.model)
    layout = train_state.state_layout(model, config, mesh)
    state = jax.jit(layout.init_state, out_shardings=layout.shardings)(jax.random.key(1))
    workdir = str(tmp_path_factory.mktemp("workdir"))
    manager = checkpoints.create_manager(workdir, max_to_keep=1, asynchronous=False)
    checkpoints.save(manager, 1, state, None)
    manager.close()
    run_record.write(workdir, config, {})
    imported = str(tmp_path_factory.mktemp("imported") / "params")
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(imported, {"params": state.params})
    return config, model, state.params, mesh, workdir, imported


@pytest.fixture(scope="module")
def imported_run(tiny, tmp_path_factory) -> dict:
    """The tool run in this process on the params checkpoint and its config (as --params_checkpoint
    --config runs it): every protocol, the validation split; its JSON record."""
    config, _, _, _, _, imported = tiny
    _, json_path, _ = protocols_tool.run(
        workdir=None,
        config=config,
        params_checkpoint=imported,
        step=None,
        split="validation",
        protocols=list(evaluate.PROTOCOLS.values()),
        out=str(tmp_path_factory.mktemp("imported_run")),
    )
    with open(json_path) as file:
        return json.load(file)


def test_the_ssync_row_is_what_the_evaluator_reports_with_the_authors_settings(tiny, imported_run):
    config, model, params, mesh, _, _ = tiny
    reference = evaluate.Evaluator(model, config, mesh).evaluate(params, evaluate.evaluation_dataset(config))

    assert imported_run["step"] == 0 and imported_run["num_videos"] == reference["num_videos"] == 2
    # The tool reads the labels at their own 32x32 and resizes them to the 16x16 model input itself.
    assert evaluate.evaluation_config(config, None).data.eval_resolution == "dataset"
    row = {row["protocol"]: row for row in imported_run["rows"]}["ssync"]
    assert row["scored_at"] == "16x16"
    for name in evaluate.NAMES:
        np.testing.assert_allclose(row[name], reference[name], rtol=1e-6, err_msg=name)


def test_config_eval_protocol_names_the_protocol_the_evaluator_reports(tiny, imported_run):
    config, model, params, mesh, _, _ = tiny
    config = config.copy_and_resolve_references()
    config.eval.protocol = "savi"  # The labels' own 32x32, whatever data.eval_resolution says.
    got = evaluate.Evaluator(model, config, mesh).evaluate(params, evaluate.evaluation_dataset(config))

    row = {row["protocol"]: row for row in imported_run["rows"]}["savi"]
    assert row["scored_at"] == "32x32" and got["num_videos"] == 2
    for name in evaluate.NAMES:
        np.testing.assert_allclose(got[name], np.nan if row[name] is None else row[name], rtol=1e-6, err_msg=name)
    config.eval.protocol = "sav"
    with pytest.raises(ValueError, match="config.eval.protocol='sav' is unknown; use 'config'"):
        evaluate.Evaluator(model, config, mesh)


@pytest.mark.slow  # Moved out of the quick suite (>20 s on 2 cores); CI runs it in the slow command.
def test_the_cli_prints_the_tables_and_with_out_writes_them_as_json_and_csv(tiny, imported_run, tmp_path):
    _, _, _, _, workdir, _ = tiny
    out = tmp_path / "protocols"
    command = [sys.executable, "-m", "ssync_jax.tools.score", f"--workdir={workdir}", "--split=validation"]
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        JAX_COMPILATION_CACHE_DIR=str(jax.config.jax_compilation_cache_dir),  # The programs imported_run compiled.
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    )
    result = subprocess.run([*command, f"--out={out}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    with open(out / "eval_protocols.json") as file:
        record = json.load(file)
    assert (record["step"], record["split"], record["num_videos"]) == (1, "validation", 2)
    rows = record["rows"]
    assert [row["protocol"] for row in rows] == list(CONVENTIONS)
    assert [row["scored_at"] for row in rows] == ["16x16", "224x224", "320x320", "32x32", "32x32", "32x32"]
    with open(out / "eval_protocols.csv", newline="") as file:
        csv_rows = list(csv.DictReader(file))
    lines = result.stdout.splitlines()
    assert lines[0] == f"{workdir} at step 1: validation split, 2 videos."
    assert lines[1].startswith("Scores in %.") and max(len(line) for line in lines[1:-1]) < 100  # All but the paths.
    for prefix, source in (("", "decoder masks, %:"), ("enc_", "encoder slot attention, %:")):
        start = lines.index(source) + 4  # The caption, a blank line, the heading and its rule.
        for row, csv_row, line, imported in zip(rows, csv_rows, lines[start : start + len(rows)], imported_run["rows"]):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            assert cells[0] == csv_row["protocol"] == row["protocol"]
            for column, cell in zip(protocols_tool.COLUMNS, cells[1:]):
                name = prefix + column
                assert float(csv_row[name]) == pytest.approx(row[name], rel=1e-9)
                assert float(cell) == pytest.approx(100 * row[name], abs=0.051)
                # The workdir's step-1 checkpoint holds the params the imported checkpoint holds.
                assert imported[name] == pytest.approx(row[name], rel=1e-6, abs=1e-7), (row["protocol"], name)
    # Again into the same folder: refused before the model loads, the files left as they were.
    again = subprocess.run([*command, f"--out={out}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 1 and again.stderr.strip().splitlines() == [
        f"Error: --out {out} already holds eval_protocols.json; choose another --out or move it away first."
    ]
    # Without --out: printed, and the way to keep them named.
    printed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert printed.returncode == 0 and "Not written: --out DIR writes eval_protocols.json" in printed.stdout


def test_data_scores_a_workdirs_model_on_a_larger_split_of_its_generator(tiny, data_dir, tmp_path):
    # The workdir's dataset has 2 validation videos; the same generator's name with 3 (generated on first
    # use, as training generates its data) holds those 2 and a third.
    config, model, params, mesh, workdir, _ = tiny
    larger = tiny_train_config.DATASET.replace("_validation2", "_validation3")
    ssync = [evaluate.PROTOCOLS["ssync"]]
    table, json_path, _ = protocols_tool.run(workdir=workdir, config=None, params_checkpoint=None, step=None,
                                             split="validation", protocols=ssync, out=str(tmp_path / "out"), data=larger)  # fmt: skip
    with open(json_path) as file:
        record = json.load(file)
    assert (record["data"], record["num_videos"]) == (larger, 3)
    assert table.splitlines()[0] == f"{workdir} at step 1: {larger} validation split, 3 videos."
    # The model is the workdir's: on its own 2 videos the tool gives the evaluator's score of its params.
    reference = evaluate.Evaluator(model, config, mesh).evaluate(params, evaluate.evaluation_dataset(config))
    _, json_path, _ = protocols_tool.run(workdir=workdir, config=None, params_checkpoint=None, step=None, split="validation",
                                         protocols=ssync, out=str(tmp_path / "own"), data=tiny_train_config.DATASET)  # fmt: skip
    with open(json_path) as file:
        own = json.load(file)
    assert own["num_videos"] == reference["num_videos"] == 2
    assert own["rows"][0]["video_fg_ari"] == pytest.approx(reference["video_fg_ari"], rel=1e-6)
    assert record["rows"][0]["video_fg_ari"] != pytest.approx(reference["video_fg_ari"], rel=1e-6)  # A third video counted.
    assert checkpoints.read_config(workdir).data.name == tiny_train_config.DATASET  # The workdir is untouched.


def test_a_bad_workdir_is_one_line_naming_it(tmp_path):
    missing = tmp_path / "no_such_run"
    command = [sys.executable, "-m", "ssync_jax.tools.score", f"--workdir={missing}"]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"Error: No workdir or checkpoint at {missing}")
