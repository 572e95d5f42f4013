"""The test suite's policy for ../shared/data: skip where it is absent, fail under CI (CI=true)."""

from __future__ import annotations

from pathlib import Path

import pytest

import conftest


@pytest.fixture
def missing_data(monkeypatch, tmp_path):
    monkeypatch.setattr(conftest, "VOCAB", Path(tmp_path) / "absent" / "vocab.txt")


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_missing_shared_data_fails_under_ci(missing_data, monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI=true, so this is an error"):
        conftest.require_shared_data()


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_missing_shared_data_skips_outside_ci(missing_data, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match="shared data folder not found"):
        conftest.require_shared_data()


def test_present_shared_data_passes(monkeypatch):
    if not conftest.VOCAB.exists():
        pytest.skip("no shared data here (under CI every data test fails instead)")
    monkeypatch.setenv("CI", "true")
    conftest.require_shared_data()  # the real folder: neither skip nor fail
