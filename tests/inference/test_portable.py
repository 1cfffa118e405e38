"""ONNX and TorchScript exports run at image sizes they were not traced at and match the eager model."""

import json

import numpy as np
import pytest
import torch

from tests.backbones import reference_arch
from translate import cli
from translate.inference import prepare_for_inference
from translate.inference.model import load_model


def run_export(*argv) -> int:
    """`translate export ...` as typed, exit code included (errors are reported by translate.cli)."""
    return cli.main(["export", *[str(a) for a in argv]])


@pytest.fixture
def weights(tmp_path):
    """Reference-layout weights of two kinds: CycleGAN's instance-norm ResNet and pix2pix's batch-norm U-Net."""
    torch.manual_seed(0)
    resnet = reference_arch.RefResnetGenerator(3, 3, ngf=4, norm_layer=reference_arch.ref_norm_layer("instance"),
                                               n_blocks=6)
    unet = reference_arch.RefUnetGenerator(3, 3, 7, ngf=4, norm_layer=reference_arch.ref_norm_layer("batch"))
    torch.save(resnet.state_dict(), tmp_path / "resnet_net_G.pth")
    torch.save(unet.state_dict(), tmp_path / "unet_net_G.pth")
    return {"resnet_6blocks": (tmp_path / "resnet_net_G.pth", "instance"),
            "unet_128": (tmp_path / "unet_net_G.pth", "batch")}


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("arch", ["resnet_6blocks", "unet_128"])
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_eager_at_a_new_size(weights, tmp_path, arch, fmt, capsys):
    if fmt == "onnx":
        pytest.importorskip("onnx", reason="torch's ONNX exporter needs the onnx package")
    path, norm = weights[arch]
    out = tmp_path / f"exported.{fmt}"
    assert run_export(path, "--arch", arch, "--norm", norm, "--ngf", "4", "--format", fmt, "--output", out) == 0
    assert "max abs difference to eager" in capsys.readouterr().out
    info = json.loads(out.with_name(out.name + ".json").read_text())
    assert info["size_multiple"] == (4 if arch == "resnet_6blocks" else 128) and info["value_range"] == [-1, 1]

    model = load_model(path, arch=arch, norm=norm, ngf=4)
    net = prepare_for_inference(model.net, "train").eval()  # what export does with a .pth: train mode, no dropout
    x = torch.rand(3, 3, 2 * model.size_multiple, 3 * model.size_multiple) * 2 - 1
    with torch.inference_mode():
        expected = net(x).numpy()
    if fmt == "onnx":
        ort = pytest.importorskip("onnxruntime")
        got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
    else:
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            got = torch.jit.load(str(out))(x).numpy()
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4


def test_export_writes_beside_an_export_folder_by_default(tmp_path):
    from tests.helpers import make_cyclegan_export

    model = make_cyclegan_export(tmp_path / "export")
    assert run_export(model, "--net", "G_BA", "--format", "torchscript") == 0
    assert (model / "G_BA.pt").is_file() and (model / "G_BA.pt.json").is_file()
    assert not list(model.glob(".*partial*"))


def test_export_model_errors_are_clear(tmp_path, capsys):
    assert run_export(tmp_path / "nothing", "--format", "onnx") == 2
    assert "does not exist" in capsys.readouterr().err
