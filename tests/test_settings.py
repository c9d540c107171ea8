"""Numbers from environment variables: default when unset, one clear message for a bad value."""

from __future__ import annotations

import pytest

from pruning_core import BhpvasError
from pruning_core.settings import env_number


def test_env_number_default_value_and_bad_values(monkeypatch):
    monkeypatch.delenv("BHPVAS_TEST_NUMBER", raising=False)
    assert env_number("BHPVAS_TEST_NUMBER", 7) == 7
    monkeypatch.setenv("BHPVAS_TEST_NUMBER", " 2.5 ")
    assert env_number("BHPVAS_TEST_NUMBER", 7) == 2.5
    for bad, integer in (("-1", False), ("many", False), ("2.5", True)):
        monkeypatch.setenv("BHPVAS_TEST_NUMBER", bad)
        with pytest.raises(BhpvasError, match="BHPVAS_TEST_NUMBER=.* must be"):
            env_number("BHPVAS_TEST_NUMBER", 7, integer=integer)
