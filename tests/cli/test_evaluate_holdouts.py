"""`promoter evaluate --holdout s3://… [--holdout-digest sha256:…]`: an object is fetched into
the verified cache and only that copy is scored; a pin the bytes do not match exits 2 with
both digests and the fix, before anything is scored. The scoring is replaced (as in
test_evaluate_settings.py) to see which file it is handed; moto's S3 on loopback."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from promoter.cli import main
from tests.cli.test_evaluate_settings import _Report
from tests.fixtures.object_stores import ObjectServer
from tests.promotion.world import fake_saved_model

CSV = b"x,churned\n1,0\n0,1\n"
DIGEST = f"sha256:{hashlib.sha256(CSV).hexdigest()}"


@pytest.fixture
def scored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    holdouts: list[Path] = []

    def evaluate_models(*, holdout: Path, **kwargs: Any) -> _Report:
        holdouts.append(holdout)
        return _Report()

    monkeypatch.setattr("promoter.evaluation.evaluate_models", evaluate_models)
    monkeypatch.setenv("PROMOTER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # no promoter.yaml here: the options' defaults
    fake_saved_model(tmp_path / "model", "graph")
    return holdouts


def evaluate(*args: str) -> Any:
    return CliRunner().invoke(main, ["evaluate", "--model-dir", "model", *args],
                              catch_exceptions=False)


def test_an_object_holdout_is_scored_from_the_verified_cache(
        scored: list[Path], s3_server: ObjectServer, tmp_path: Path) -> None:
    bucket = s3_server.new_bucket()
    s3_server.put(bucket, "h/churn.csv", CSV)
    result = evaluate("--holdout", f"s3://{bucket}/h/churn.csv", "--holdout-digest", DIGEST)
    assert result.exit_code == 0, result.output
    assert scored == [tmp_path / "cache" / "holdouts" / "blobs" /
                      DIGEST.removeprefix("sha256:") / "churn.csv"]
    assert scored[0].read_bytes() == CSV


def test_an_object_that_is_not_the_pinned_holdout_exits_2(
        scored: list[Path], s3_server: ObjectServer) -> None:
    bucket = s3_server.new_bucket()
    changed = CSV + b"1,1\n"
    s3_server.put(bucket, "h/churn.csv", changed)
    found = f"sha256:{hashlib.sha256(changed).hexdigest()}"
    result = evaluate("--holdout", f"s3://{bucket}/h/churn.csv", "--holdout-digest", DIGEST)
    assert result.exit_code == 2
    assert scored == []
    assert (f"error: the holdout s3://{bucket}/h/churn.csv has digest {found}, but "
            f"--holdout-digest pins {DIGEST}") in result.output
    assert f"fix: restore the pinned holdout at s3://{bucket}/h/churn.csv; or, if the new " \
           f"rows are meant, set --holdout-digest to {found}" in result.output


@pytest.mark.parametrize(("pin", "said"), [
    ("sha256:" + "0" * 64, "pins sha256:" + "0" * 64),
    ("sha256:ABC", "--holdout-digest: 'sha256:ABC' is not a sha256: digest"),
])
def test_a_local_holdout_that_is_not_the_pinned_one_exits_2(
        scored: list[Path], tmp_path: Path, pin: str, said: str) -> None:
    (tmp_path / "h.csv").write_bytes(CSV)
    result = evaluate("--holdout", "h.csv", "--holdout-digest", pin)
    assert result.exit_code == 2
    assert said in result.output
    assert scored == []
