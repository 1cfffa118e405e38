"""tests.helpers.shared_data: a test that needs ../shared/data skips where the data is absent, but fails on CI."""

import pytest

from tests.helpers import shared_data


def test_present_data_is_returned(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert shared_data(tmp_path) == tmp_path  # an absolute path is taken as it is


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception),
                                         (None, pytest.skip.Exception)], ids=["ci", "ci-empty", "local"])
def test_missing_data_fails_on_ci_and_skips_elsewhere(ci, outcome, tmp_path, monkeypatch):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="no-such-dataset"):
        shared_data(tmp_path / "no-such-dataset")
    with pytest.raises(outcome, match="no-such-dataset"):
        shared_data("no-such-dataset/trainA")
