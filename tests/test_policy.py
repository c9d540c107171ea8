"""Server policy: allowed model roots, hub ids and data roots; how a source string is classified."""

from __future__ import annotations

import pytest

from pruning_core import ModelLoadError
from pruning_core.policy import SourcePolicy
from pruning_core.sources import looks_like_path


def test_policy_from_environment(tmp_path, monkeypatch):
    allowed = tmp_path / "models"
    (allowed / "mine").mkdir(parents=True)
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.setenv("BHPVAS_MODEL_ROOTS", str(allowed))
    monkeypatch.setenv("BHPVAS_ALLOW_HUB", "0")
    policy = SourcePolicy.from_env()
    policy.check("demo")
    policy.check(str(allowed / "mine"))
    with pytest.raises(ModelLoadError, match="only opens model folders under"):
        policy.check(str(other))
    with pytest.raises(ModelLoadError, match="only opens model folders under"):
        policy.check(str(allowed / ".." / "elsewhere"))
    with pytest.raises(ModelLoadError, match="does not download models from the hub"):
        policy.check("bert-base-uncased")


def test_default_policy_allows_everything(tmp_path, monkeypatch):
    monkeypatch.delenv("BHPVAS_MODEL_ROOTS", raising=False)
    monkeypatch.delenv("BHPVAS_ALLOW_HUB", raising=False)
    policy = SourcePolicy.from_env()
    policy.check(str(tmp_path))
    policy.check("org/model")


def test_data_policy_allows_bundled_data_uploads_and_files_under_the_roots(tmp_path, monkeypatch):
    from pruning_core.errors import DataError

    allowed, elsewhere, uploads = tmp_path / "data", tmp_path / "private", tmp_path / "uploads"
    for folder in (allowed, elsewhere, uploads):
        folder.mkdir()
    monkeypatch.setenv("BHPVAS_DATA_ROOTS", str(allowed))
    policy = SourcePolicy.from_env()
    policy.check_data("sst2")
    policy.check_data(str(allowed / "reviews.csv"))
    policy.check_data(str(uploads / "token" / "sha" / "reviews.csv"), always_allowed=(uploads,))
    for refused in (str(elsewhere / "secret.csv"), str(allowed / ".." / "private" / "secret.csv"), "/etc/passwd"):
        with pytest.raises(DataError, match="only reads data files under"):
            policy.check_data(refused, always_allowed=(uploads,))
    monkeypatch.delenv("BHPVAS_DATA_ROOTS")
    SourcePolicy.from_env().check_data(str(elsewhere / "secret.csv"))


def test_looks_like_path_tells_folders_from_hub_ids():
    for path in ("./model", "/models/bert", "~/models/bert", "models/bert/final"):
        assert looks_like_path(path), path
    for hub_id in ("bert-base-uncased", "textattack/bert-base-uncased-SST-2"):
        assert not looks_like_path(hub_id), hub_id
