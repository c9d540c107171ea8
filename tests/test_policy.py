"""Server policy: allowed model roots and hub ids."""

from __future__ import annotations

import pytest

from pruning_core import ModelLoadError
from pruning_core.policy import SourcePolicy


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
