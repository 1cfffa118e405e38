"""`evaluate(...)`, the training loop's entry: dicts of floats, and tensors scoring exactly like their saved PNGs."""

import pytest
import torch

from translate.evaluation import api, evaluate
from translate.evaluation.loading import read_rgb

from .synthetic import noisy, save_images, shared_images, smooth_images


@pytest.fixture(autouse=True)
def session_networks(monkeypatch, features_64, perceptual, classifier):
    """evaluate() builds each network once per process; here it reuses the session's (features at 64 px)."""
    monkeypatch.setattr(api, "_features", lambda name, weights, device: features_64)
    monkeypatch.setattr(api, "_perceptual", lambda device: perceptual)
    monkeypatch.setattr(api, "_classifier", lambda device: classifier)


def test_fid_of_tensors_equals_fid_of_their_pngs(tmp_path):
    real_images = smooth_images(8, size=32)
    real = save_images(real_images, tmp_path / "real")
    fake = noisy(smooth_images(8, size=32, seed=3), 0.02)
    save_images(fake, tmp_path / "fake")
    from_tensors = evaluate("fid", fake * 2 - 1, real=real)  # generator range [-1, 1]
    from_folder = evaluate("fid", tmp_path / "fake", real=real)
    assert set(from_tensors) == {"fid", "kid_mean", "kid_std"}
    assert all(isinstance(v, float) for v in from_tensors.values())
    assert from_tensors == pytest.approx(from_folder, rel=1e-9, abs=1e-12)
    batches = [fake[:5] * 2 - 1, fake[5:] * 2 - 1]  # an iterable of batches works too
    assert evaluate("fid", batches, real=real) == pytest.approx(from_tensors, rel=1e-9, abs=1e-12)
    aligned = save_images(torch.cat([real_images, 1 - real_images], dim=-1), tmp_path / "aligned")  # A | B files
    assert evaluate("fid", batches, real=aligned, real_half="left") == pytest.approx(from_tensors, rel=1e-9,
                                                                                     abs=1e-12)
    kept = api.features_of_real(real)  # a fixed real set, extracted once and scored against many times
    assert evaluate("fid", batches, real_features=kept) == pytest.approx(from_tensors, rel=1e-9, abs=1e-12)


def test_paired_on_tensors():
    x = smooth_images(2, size=32) * 2 - 1
    scores = evaluate("paired", x, target=x)
    assert set(scores) == {"psnr", "ssim", "l1", "perceptual"}
    assert scores["ssim"] == pytest.approx(1.0, abs=1e-6) and scores["l1"] == 0.0


def test_imagenet_class_on_tensors():
    zebras = torch.stack([read_rgb(p) for p in shared_images("trainB", 2)]).float() / 127.5 - 1
    assert evaluate("imagenet_class", zebras, imagenet_class="zebra") == pytest.approx(
        {"mean_prob": pytest.approx(1.0, abs=0.3), "top1": 1.0, "top5": 1.0})


@pytest.mark.parametrize("call, message", [
    (lambda: evaluate("fid", torch.zeros(2, 3, 8, 8)), "real="),
    (lambda: evaluate("paired", torch.zeros(2, 3, 8, 8)), "target="),
    (lambda: evaluate("imagenet_class", torch.zeros(2, 3, 8, 8)), "imagenet_class="),
    (lambda: evaluate("lpips", torch.zeros(2, 3, 8, 8)), "unknown metric"),
    (lambda: evaluate("paired", torch.zeros(2, 1, 8, 8), target=torch.zeros(2, 1, 8, 8)), r"\(N, 3, H, W\)"),
])
def test_wrong_calls_explain_themselves(call, message):
    with pytest.raises(ValueError, match=message):
        call()
