"""Published weights as exports: the download (a local HTTP server stands in for the network) and the import."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from translate import pretrained
from translate.backbones import build_generator
from translate.inference import Translator
from translate.inference.model import load_model
from translate.pretrained import Published, fetch_pretrained, import_reference

TINY = Published("cyclegan", "resnet_6blocks", "instance", False, "AtoB", "", ngf=4)


def reference_file(path: Path, seed: int = 0) -> Path:
    """A reference-format generator file: DataParallel prefix and the stale InstanceNorm statistics old ones carry."""
    torch.manual_seed(seed)
    state = build_generator("resnet_6blocks", ngf=4, norm="instance").state_dict()
    state = {f"module.{k}": v for k, v in state.items()}
    state["module.model.2.running_mean"] = torch.zeros(4)
    torch.save(state, path)
    return path


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Serves tmp_path/served over HTTP on 127.0.0.1 and points the published table at it."""
    served = tmp_path / "served"
    served.mkdir()
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(served))  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(pretrained.URL_VARIABLE, f"http://127.0.0.1:{httpd.server_address[1]}")
    monkeypatch.setitem(pretrained.PUBLISHED, "tiny", TINY)
    yield served
    httpd.shutdown()


def translate_once(model_path: Path, image: np.ndarray, **kwargs) -> np.ndarray:
    model = load_model(model_path, **kwargs)
    return Translator(model.net, model.size_multiple, torch.device("cpu"))([image])[0]


def test_download_makes_an_export_that_computes_what_the_file_computes(server, tmp_path):
    weights = reference_file(server / "tiny.pth")
    export = fetch_pretrained("tiny", tmp_path / "pretrained" / "tiny")
    description = json.loads((export / "config.json").read_text())
    assert description["imported_from"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert description["imported_from"]["url"].endswith("/tiny.pth")
    assert description["preprocess"]["crop_size"] == 256 and description["nets"]["G"]["inference_mode"] == "train"
    image = np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    ours = translate_once(export, image)
    theirs = translate_once(weights, image, arch="resnet_6blocks", ngf=4)
    assert np.array_equal(ours, theirs)
    assert sorted(p.name for p in export.parent.iterdir()) == ["tiny"]  # no partial download left beside it


def test_a_missing_file_on_the_server_is_one_error_naming_the_address_and_writes_nothing(server, tmp_path):
    with pytest.raises(OSError, match=r"cannot download http://127\.0\.0\.1:\d+/tiny\.pth: HTTP 404"):
        fetch_pretrained("tiny", tmp_path / "out" / "tiny")
    assert list((tmp_path / "out").iterdir()) == []


def test_an_unreachable_server_names_the_variable_that_replaces_it(monkeypatch, tmp_path):
    monkeypatch.setenv(pretrained.URL_VARIABLE, "http://127.0.0.1:9")  # discard port: connection refused
    with pytest.raises(OSError, match="TRANSLATE_PRETRAINED_URL"):
        fetch_pretrained("horse2zebra", tmp_path / "h2z")


def test_unknown_names_are_refused_before_any_download(tmp_path):
    with pytest.raises(ValueError, match="no published model 'horse2zebrah'"):
        fetch_pretrained("horse2zebrah", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_published_names_follow_the_reference_download_scripts():
    assert pretrained.PUBLISHED["horse2zebra"].url("horse2zebra") == f"{pretrained.CYCLEGAN_URL}/horse2zebra.pth"
    assert pretrained.PUBLISHED["pix2pix_map2sat"].direction == "BtoA"
    assert pretrained.PUBLISHED["pix2pix_edges2shoes"].arch == "unet_256"


def test_import_refuses_weights_of_another_architecture(tmp_path):
    weights = reference_file(tmp_path / "latest_net_G_A.pth")
    wrong = Published("cyclegan", "resnet_9blocks", "instance", False, "AtoB", "", ngf=4)
    with pytest.raises(ValueError, match="weights do not fit"):
        import_reference(weights, tmp_path / "export", wrong)
    assert not (tmp_path / "export").exists()


def test_import_refuses_a_size_the_generator_cannot_take(tmp_path):
    weights = reference_file(tmp_path / "latest_net_G_A.pth")
    with pytest.raises(ValueError, match="--size 130 is not a multiple of resnet_6blocks's 4"):
        import_reference(weights, tmp_path / "export", TINY, size=130)
