"""Networks built once per session, and a private feature cache per test."""

import pytest


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Feature caches go to the test's own folder, never to the user's ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def features_64():
    """EfficientNet-Lite0 pooled features at 64x64 input: the real extractor, at a size tests can afford."""
    from translate.evaluation.features import build_features

    return build_features("efficientnet_lite0", image_size=64)


@pytest.fixture(scope="session")
def perceptual():
    from translate.evaluation.perceptual import FeatureDistance

    return FeatureDistance()


@pytest.fixture(scope="session")
def classifier():
    from translate.evaluation.features import build_classifier

    return build_classifier()
