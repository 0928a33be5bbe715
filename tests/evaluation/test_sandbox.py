"""The worker's confinement (`promoter.evaluation.sandbox`): the environment it starts with."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from promoter.evaluation.evaluate import run_worker
from promoter.evaluation.sandbox import worker_environment


def test_the_worker_environment_holds_no_secret(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    secrets = {"PROMOTER_API_TOKEN": "p-secret", "AWS_SECRET_ACCESS_KEY": "aws-secret",
               "AWS_ACCESS_KEY_ID": "AKIA", "GOOGLE_APPLICATION_CREDENTIALS": "/keys/gcp.json",
               "GITHUB_TOKEN": "ghp-secret", "PROMOTER_WEBHOOK_SECRET": "hook-secret",
               "PYTHONPATH": "/elsewhere", "LD_PRELOAD": "/tmp/evil.so"}
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LANG", "C.UTF-8")
    # What the worker itself reads, through run_worker's real environment and cwd.
    reader = ("import json, sys; sys.stdin.read(); raw = open('/proc/self/environ', 'rb')"
              ".read(); print(json.dumps({'ok': True, 'environ': raw.decode()}))")
    environ = run_worker({"outDir": str(tmp_path)}, timeout_s=60,
                         command=[sys.executable, "-c", reader])["environ"]
    for key, value in secrets.items():
        assert key not in environ
        assert value not in environ
    variables = dict(item.split("=", 1) for item in environ.split("\0") if item)
    assert "PATH" not in variables
    assert variables["HOME"] == variables["TMPDIR"] == str(tmp_path)
    assert variables["LANG"] == "C.UTF-8"
    assert set(variables) <= {"HOME", "TMPDIR", "LANG", "TF_CPP_MIN_LOG_LEVEL",
                              "PYTHONUNBUFFERED"}
    assert worker_environment({"PATH": "/bin", "OMP_NUM_THREADS": "2"},
                              scratch=tmp_path) == {
        "OMP_NUM_THREADS": "2", "TF_CPP_MIN_LOG_LEVEL": "2", "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path)}
