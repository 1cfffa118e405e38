"""FID/KID: the formulas on known Gaussians, zero for a set against itself, growth with noise, the folder cache and
the `translate eval fid` JSON."""

import argparse
import json
import os

import pytest
import torch

from translate.evaluation import fid
from translate.evaluation.features import build_features, extract

from .synthetic import noisy, save_images, smooth_images


def reference_fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Heusel et al. 2017, eq. 6, with scipy's matrix square root: an independent implementation."""
    import numpy as np
    from scipy import linalg

    r, f = real.numpy(), fake.numpy()
    s1, s2 = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    return float(((r.mean(0) - f.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))


class GivenFeatures(torch.nn.Module):
    """Lets torchmetrics take feature sets directly."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def torchmetrics_fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=GivenFeatures(real.shape[1]))
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def test_kid_matches_torchmetrics():
    """One subset holding every image makes the subset draw irrelevant, so both must agree exactly."""
    import warnings

    from torchmetrics.image.kid import KernelInceptionDistance

    g = torch.Generator().manual_seed(0)
    real = torch.randn(30, 16, generator=g, dtype=torch.float64)
    fake = torch.randn(30, 16, generator=g, dtype=torch.float64) * 1.3 + 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns that it keeps every feature in memory
        metric = KernelInceptionDistance(feature=GivenFeatures(16), subsets=1, subset_size=30)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    expected = float(metric.compute()[0])
    assert fid.kernel_distance(real, fake, subsets=3, subset_size=30) == pytest.approx((expected, 0.0), abs=1e-12)


@pytest.mark.parametrize("n_real, n_fake, dim", [(2000, 1500, 4), (30, 20, 64)])  # D x D route, then n x n route
def test_fid_matches_scipy_and_torchmetrics(n_real, n_fake, dim):
    g = torch.Generator().manual_seed(0)
    real = torch.randn(n_real, dim, generator=g, dtype=torch.float64)
    fake = 1.5 * torch.randn(n_fake, dim, generator=g, dtype=torch.float64) + 0.5
    value = fid.frechet_distance(real, fake)
    assert value == pytest.approx(reference_fid(real, fake), rel=1e-6)
    assert value == pytest.approx(torchmetrics_fid(real, fake), rel=1e-6)


def test_fid_of_gaussians_is_the_squared_mean_shift():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(4000, 4, generator=g, dtype=torch.float64)
    shifted = torch.randn(4000, 4, generator=g, dtype=torch.float64) + torch.tensor([1.0, 0, 0, 2.0],
                                                                                    dtype=torch.float64)
    assert fid.frechet_distance(real, shifted) == pytest.approx(5.0, abs=0.5)


@pytest.fixture(scope="module")
def noise_ladder(features_64):
    """Features of 40 smooth images and of the same images with growing noise."""
    images = smooth_images(40)
    return [extract(features_64, [noisy(images, amount)]) for amount in (0.0, 0.05, 0.15, 0.4)]


def test_fid_and_kid_of_a_set_with_itself_are_zero(noise_ladder):
    clean = noise_ladder[0]
    assert fid.frechet_distance(clean, clean) == pytest.approx(0, abs=1e-6)
    kid_mean, kid_std = fid.kernel_distance(clean, clean, subsets=20, subset_size=20)
    assert abs(kid_mean) < 0.01


def test_fid_and_kid_grow_with_noise(noise_ladder):
    clean = noise_ladder[0]
    scores = [fid.fid_kid(clean, other, kid_subsets=20) for other in noise_ladder[1:]]
    fids, kids = [s["fid"] for s in scores], [s["kid_mean"] for s in scores]
    assert fids == sorted(fids) and fids[0] > 0
    assert kids == sorted(kids) and kids[-1] > 0
    assert scores[0]["kid_subset_size"] == 20  # half the 40-image sets: subsets that differ
    assert all(s["kid_std"] > 0 for s in scores)


def test_kid_repeats_with_a_seed(noise_ladder):
    a, b = noise_ladder[0], noise_ladder[2]
    first = fid.kernel_distance(a, b, subsets=10, subset_size=20, seed=3)
    torch.rand(5)  # the global RNG moving on must not matter
    assert fid.kernel_distance(a, b, subsets=10, subset_size=20, seed=3) == first
    assert fid.kernel_distance(a, b, subsets=10, subset_size=20, seed=4) != first


def test_too_few_images_is_an_error():
    with pytest.raises(ValueError, match="at least 2 images"):
        fid.frechet_distance(torch.zeros(1, 8), torch.zeros(5, 8))
    with pytest.raises(ValueError, match="one D"):
        fid.frechet_distance(torch.zeros(4, 8), torch.zeros(4, 7))


def test_reference_features_are_cached_per_folder_and_content(features_64, tmp_path):
    folder = save_images(smooth_images(6), tmp_path / "real")
    first, status1 = fid.folder_features(folder, features_64, use_cache=True, progress=False)
    second, status2 = fid.folder_features(folder, features_64, use_cache=True, progress=False)
    assert (status1, status2) == ("miss", "hit")
    assert torch.equal(first, second)
    os.utime(folder / "000.png", ns=(1, 1))  # touched, same content: the features are still right
    assert fid.folder_features(folder, features_64, use_cache=True, progress=False)[1] == "hit"
    (folder / "extra.png").write_bytes((folder / "000.png").read_bytes())  # one more image
    assert fid.folder_features(folder, features_64, use_cache=True, progress=False)[1] == "miss"
    (folder / "extra.png").unlink()
    assert fid.folder_features(folder, features_64, use_cache=False, progress=False)[1] == "off"
    cached = list((tmp_path / "cache" / "translate" / "features").glob("*.safetensors"))
    assert len(cached) == 2 and not list(cached[0].parent.glob(".*partial*"))
    links = tmp_path / "links"  # datasets assembled from symlinks (e.g. a validation split) are keyed as well
    links.mkdir()
    for path in sorted(folder.iterdir())[:3]:
        (links / path.name).symlink_to(path)
    statuses = [fid.folder_features(links, features_64, use_cache=True, progress=False)[1] for _ in range(2)]
    assert statuses == ["miss", "hit"]


def test_an_image_changed_with_its_size_and_mtime_kept_is_not_served_from_the_cache(tmp_path):
    """The stale-cache finding: new pixels, same byte count (BMP: uncompressed), mtime put back. A key of size and
    mtime served the old features and a silently wrong FID; the key hashes content, so the folder is measured
    again and scores as a fresh computation does."""
    real = save_images(smooth_images(6), tmp_path / "real", ext=".bmp")
    fake = save_images(smooth_images(6, seed=1), tmp_path / "fake", ext=".bmp")
    other = save_images(smooth_images(1, seed=2), tmp_path / "other", ext=".bmp")
    options = dict(image_size=64, kid_subset_size=3, progress=False)
    first = fid.fid_folders(real, fake, **options)
    target, stat = real / "000.bmp", (real / "000.bmp").stat()
    target.write_bytes((other / "000.bmp").read_bytes())
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    again = fid.fid_folders(real, fake, **options)
    fresh = fid.fid_folders(real, fake, use_cache=False, **options)
    assert (first["reference_cache"], again["reference_cache"]) == ("miss", "miss")
    assert again["fid"] == pytest.approx(fresh["fid"]) and again["fid"] != pytest.approx(first["fid"])


def run_cli(module, argv, capsys):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    assert module.run(parser.parse_args(argv)) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "stdout must hold exactly one JSON line"
    return json.loads(out)


def test_cli_prints_one_json_object(tmp_path, capsys):
    images = smooth_images(12)
    real = save_images(images, tmp_path / "real")
    fake = save_images(noisy(images, 0.1), tmp_path / "fake", ext=".jpg")
    result = run_cli(fid, ["--real", str(real), "--fake", str(fake), "--image-size", "64", "--batch-size", "5",
                           "--kid-subsets", "10", "--no-progress"], capsys)
    for key, kind in [("fid", float), ("kid_mean", float), ("kid_std", float), ("features", str),
                      ("image_size", int), ("resize", str), ("n_real", int), ("kid_subset_size", int)]:
        assert isinstance(result[key], kind), key
    assert result["features"] == "efficientnet_lite0" and result["image_size"] == 64
    assert result["n_real"] == result["n_fake"] == 12 and result["kid_subset_size"] == 6
    assert result["fid"] > 0 and result["reference_cache"] == "miss"


def test_inception_needs_a_weights_file(tmp_path):
    with pytest.raises(ValueError, match="--weights"):
        build_features("inception")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_features("inception", weights=tmp_path / "nope.pth")
    bogus = tmp_path / "bogus.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, bogus)
    pytest.importorskip("torch_fidelity")
    with pytest.raises(ValueError, match="not the FID Inception"):
        build_features("inception", weights=bogus)


def test_inception_features_from_a_local_file(tmp_path, monkeypatch):
    """The real FID weights cannot be fetched here: a randomly initialised file of the same layout stands in."""
    pytest.importorskip("torch_fidelity")
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception
    from torchmetrics.image.fid import NoTrainInceptionV3

    with monkeypatch.context() as patch, torch.device("meta"):  # keys and shapes only: no download, no init
        patch.setattr(tf_inception, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(tf_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        layout = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"]).state_dict()
    weights = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    g = torch.Generator().manual_seed(0)
    def stand_in(key: str, like: torch.Tensor) -> torch.Tensor:
        if key.endswith("running_var"):
            return torch.ones(like.shape)
        if like.is_floating_point():
            return 0.05 * torch.randn(like.shape, generator=g)
        return torch.zeros(like.shape, dtype=like.dtype)

    torch.save({k: stand_in(k, v) for k, v in layout.items()}, weights)
    net = build_features("inception", weights=weights)
    out = extract(net, [smooth_images(2, size=48)])
    assert out.shape == (2, 2048) and torch.isfinite(out).all()
    assert net.description["image_size"] == 299 and "torch-fidelity" in net.description["implementation"]


def test_one_unreadable_image_is_skipped_and_reported_and_few_images_warn(tmp_path):
    from tests.helpers import write_images
    from translate.evaluation.fid import fid_folders

    write_images(tmp_path / "real", 6, (32, 32), seed=0)
    write_images(tmp_path / "fake", 6, (32, 32), seed=1)
    (tmp_path / "fake" / "broken.png").write_bytes(b"not a png")
    report = fid_folders(tmp_path / "real", tmp_path / "fake", image_size=32, use_cache=False, progress=False,
                         kid_subsets=2)
    assert report["n_fake"] == 6 and [s["path"] for s in report["skipped"]] == [str(tmp_path / "fake" / "broken.png")]
    assert report["warnings"] and "biased" in report["warnings"][0]
