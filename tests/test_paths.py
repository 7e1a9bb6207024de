"""Workdirs may be buckets: gs:// paths stay URLs, local ones become absolute."""

import json
import os

import pytest

from ssync_jax import checkpoints, errors, paths


def test_bucket_workdirs_keep_their_url_and_local_ones_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.absolute("gs://bucket/runs/a") == "gs://bucket/runs/a"
    assert paths.absolute("runs/a") == os.path.join(str(tmp_path), "runs", "a")
    assert checkpoints.checkpoint_dir("gs://bucket/runs/a") == "gs://bucket/runs/a/checkpoints"


def test_write_json_creates_the_directory_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "new" / "metrics.json"
    paths.write_json(str(path), {"b": 1, "a": [0.5]})
    assert json.loads(path.read_text()) == {"a": [0.5], "b": 1}
    assert os.listdir(path.parent) == ["metrics.json"]


def test_a_tilde_and_variables_expand_in_local_paths_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RUNS", "/data/runs")
    assert paths.expand("~/tensorflow_datasets") == os.path.join(str(tmp_path), "tensorflow_datasets")
    assert paths.expand("$RUNS/a") == "/data/runs/a"
    assert paths.absolute("~/w") == os.path.join(str(tmp_path), "w")
    assert paths.expand("gs://bucket/~x") == "gs://bucket/~x"


def test_outputs_are_checked_before_any_work_naming_the_flag(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(errors.ConfigError, match=f"--out {a_file} is a file; name a folder"):
        paths.check_output_folder(str(a_file), "--out")
    with pytest.raises(errors.ConfigError, match=f"--out {a_file / 'sub'}: {a_file} is a file, not a folder"):
        paths.check_output_folder(str(a_file / "sub"), "--out")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "masks.npz").write_text("earlier")
    with pytest.raises(errors.WouldOverwriteError, match="already holds masks.npz"):
        paths.check_output_folder(str(tmp_path / "out"), "--out", ["masks.npz"])
    paths.check_output_folder(str(tmp_path / "new" / "deeper"), "--out", ["masks.npz"])  # Creatable: fine.
    with pytest.raises(errors.WouldOverwriteError, match="already exists"):
        paths.check_new_file(str(a_file), "--out")
    with pytest.raises(errors.WouldOverwriteError, match="not an empty folder"):
        paths.check_new_folder(str(tmp_path / "out"), "--out")
    assert not (tmp_path / "new").exists()  # Checking creates nothing.
