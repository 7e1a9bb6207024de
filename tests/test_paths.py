"""Workdirs may be buckets: gs:// paths stay URLs, local ones become absolute."""

import json
import os

from ssync_jax import checkpoints, paths


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
