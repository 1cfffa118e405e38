"""Paired metrics: exact values on known pairs, pairing by relative path, clear errors, LPIPS from a local file,
and the `translate eval paired` JSON."""

import argparse
import json

import pytest
import torch
import torchvision

from translate.evaluation import paired
from translate.evaluation.perceptual import Lpips

from .synthetic import noisy, save_images, smooth_images


@pytest.fixture
def built_once(perceptual, monkeypatch):
    """Folder-level calls reuse the module's network instead of loading the weights again."""
    monkeypatch.setattr(paired, "build_perceptual", lambda lpips_backbone=None: perceptual)


def test_identical_images_score_perfectly(perceptual):
    x = smooth_images(3)
    scores = paired.pair_scores(x, x, perceptual)
    assert torch.allclose(scores["ssim"], torch.ones(3))
    assert torch.equal(scores["psnr"], torch.full((3,), paired.PSNR_CAP_DB))
    assert torch.equal(scores["l1"], torch.zeros(3))
    assert torch.allclose(scores["perceptual"], torch.zeros(3), atol=1e-6)


def test_known_psnr_and_l1():
    x = torch.full((1, 3, 8, 8), 0.5)
    assert paired.psnr(x, x + 0.1).item() == pytest.approx(20.0, abs=1e-4)  # 10 log10(1 / 0.01)
    assert paired.psnr(x, x + 0.01).item() == pytest.approx(40.0, abs=1e-3)


def test_scores_worsen_with_noise(perceptual):
    x = smooth_images(4)
    small, large = (paired.pair_scores(noisy(x, a), x, perceptual) for a in (0.05, 0.3))
    assert (small["psnr"] > large["psnr"]).all() and (small["ssim"] > large["ssim"]).all()
    assert (small["l1"] < large["l1"]).all() and (small["perceptual"] < large["perceptual"]).all()


def run_cli(argv, capsys):
    parser = argparse.ArgumentParser()
    paired.add_arguments(parser)
    assert paired.run(parser.parse_args(argv)) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return json.loads(out)


def test_cli_pairs_by_relative_path_without_extension(tmp_path, capsys, built_once):
    x = smooth_images(3, size=32)
    names = ["a/x", "a/y", "b/x"]
    save_images(x, tmp_path / "pred", ".png", names)
    save_images(x, tmp_path / "target", ".bmp", names)
    result = run_cli(["--pred", str(tmp_path / "pred"), "--target", str(tmp_path / "target"), "--no-progress"],
                     capsys)
    assert result["n_pairs"] == 3 and result["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert result["psnr"] == paired.PSNR_CAP_DB and result["l1"] == 0.0
    assert set(result) >= {"psnr", "ssim", "l1", "perceptual", "perceptual_metric"}
    assert "uncalibrated" in result["perceptual_metric"]


def test_target_half_of_side_by_side_files(tmp_path, built_once):
    x = smooth_images(2, size=32)
    save_images(x, tmp_path / "pred")
    save_images(torch.cat([x, 1 - x], dim=-1), tmp_path / "aligned")  # A | B, the prediction equals A
    result = paired.paired_folders(tmp_path / "pred", tmp_path / "aligned", target_half="left", progress=False)
    assert result["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert paired.paired_folders(tmp_path / "pred", tmp_path / "aligned", target_half="right",
                                 progress=False)["ssim"] < 0.5


def test_missing_partner_and_size_mismatch_name_the_files(tmp_path, built_once):
    save_images(smooth_images(2, size=32), tmp_path / "pred")
    save_images(smooth_images(1, size=32), tmp_path / "target")
    with pytest.raises(ValueError, match=r"001"):
        paired.paired_folders(tmp_path / "pred", tmp_path / "target", progress=False)
    save_images(smooth_images(2, size=16), tmp_path / "small")
    with pytest.raises(ValueError, match=r"pred/000.png is 32x32.*small/000.png is 16x16"):
        paired.paired_folders(tmp_path / "pred", tmp_path / "small", progress=False)


def test_lpips_proper_from_a_local_backbone_file(tmp_path):
    weights = tmp_path / "alexnet.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), weights)
    lpips = Lpips(weights)
    x, y = smooth_images(2, size=32), smooth_images(2, size=32, seed=5)
    assert torch.allclose(lpips(x, x), torch.zeros(2), atol=1e-6)
    assert (lpips(x, y) > 0).all() and "lpips-alex" in lpips.description
    torch.save({"features.0.weight": torch.zeros(8, 3, 5, 5)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a torchvision AlexNet or VGG-16"):
        Lpips(tmp_path / "other.pth")


def test_an_unreadable_prediction_leaves_its_pair_out_and_is_reported(tmp_path):
    from tests.helpers import write_images
    from translate.evaluation.paired import paired_folders

    write_images(tmp_path / "pred", 3, (16, 16), seed=0)
    write_images(tmp_path / "target", 3, (16, 16), seed=1)
    (tmp_path / "pred" / "001.png").write_bytes(b"truncated")
    report = paired_folders(tmp_path / "pred", tmp_path / "target", progress=False)
    assert report["n_pairs"] == 2 and [s["path"] for s in report["skipped"]] == [str(tmp_path / "pred" / "001.png")]
