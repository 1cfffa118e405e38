"""Encoders: the packaged EfficientNet-Lite0/1/2 mapped by position with shape checks, embeddings / feature maps /
logits from one set of weights, local weight files, clear errors, and freeze()."""

import copy

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from tests.helpers import shared_data
from translate.backbones import ENCODERS, build_encoder, encoder_normalization, freeze
from translate.backbones.encoders import Normalize, map_by_position, read_state_dict

ZEBRA_CLASS = 340  # ImageNet-1k "zebra"


@pytest.fixture(scope="module")
def package_state():
    return read_state_dict(ENCODERS["efficientnet_lite0"].weights())


@pytest.fixture(scope="module")
def lite0():
    return build_encoder("efficientnet_lite0")


def test_package_weights_land_on_timm_keys_in_order(lite0, package_state):
    logits = build_encoder("efficientnet_lite0", num_classes=1000)
    model_state = logits.state_dict()
    assert len(model_state) == len(package_state) == 296
    for (_, theirs), (_, ours) in zip(package_state.items(), model_state.items()):
        assert torch.equal(theirs, ours)
    assert torch.equal(lite0.conv_head.weight, logits.conv_head.weight)  # embedding and logits share weights
    assert lite0.bn1.eps == 1e-3  # the TF-style port's BatchNorm eps


def test_embedding_features_and_logits_shapes(lite0):
    x = torch.rand(2, 3, 64, 64)
    assert lite0(x).shape == (2, 1280) and not lite0.training
    maps = build_encoder("efficientnet_lite0", features_only=True)
    assert [f.shape[1] for f in maps(x)] == [16, 24, 40, 112, 320]
    assert torch.equal(maps.conv_stem.weight, lite0.conv_stem.weight)
    assert encoder_normalization(lite0) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert encoder_normalization(maps) == encoder_normalization(lite0)


def test_random_init_and_unregistered_names():
    net = build_encoder("test_efficientnet", pretrained=False)
    assert net(torch.rand(1, 3, 32, 32)).shape == (1, net.num_features)
    assert encoder_normalization(net) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    with pytest.raises(ValueError, match="pretrained=PATH"):
        build_encoder("test_efficientnet", pretrained=True)
    with pytest.raises(ValueError, match="not a timm model"):
        build_encoder("no_such_net", pretrained=False)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_local_weights_files_load_by_name(tmp_path, suffix):
    source = build_encoder("test_efficientnet", pretrained=False, num_classes=10)
    path = tmp_path / f"weights{suffix}"
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save({"state_dict": state}, path)
    logits = build_encoder("test_efficientnet", pretrained=path, num_classes=10)
    embedding = build_encoder("test_efficientnet", pretrained=path)  # the file's classifier is left out
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(logits(x), source.eval()(x))
    assert torch.equal(embedding(x), source.forward_head(source.forward_features(x), pre_logits=True))


def test_a_file_for_a_registered_name_uses_timms_settings(tmp_path):
    """Weights from a file are taken as timm's (e.g. its hub's efficientnet_lite0.ra_in1k): eps 1e-5, ImageNet
    normalisation; the registered eps 1e-3 and 0.5/0.5 belong to the packaged weights only."""
    path = tmp_path / "timm_lite0.safetensors"
    save_file(build_encoder("efficientnet_lite0", pretrained=False).state_dict(), str(path))
    net = build_encoder("efficientnet_lite0", pretrained=path)
    assert net.bn1.eps == 1e-5 and encoder_normalization(net)[0] == (0.485, 0.456, 0.406)


def test_bad_weight_files_are_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_encoder("test_efficientnet", pretrained=tmp_path / "missing.pth")
    pickled = tmp_path / "code.pth"
    torch.save({"weights": nn.Linear(2, 2)}, pickled)  # a module object needs code to unpickle
    with pytest.raises(ValueError, match="cannot read weights file .*code.pth"):
        build_encoder("test_efficientnet", pretrained=pickled)
    other = tmp_path / "other.pth"
    torch.save(build_encoder("test_resnet", pretrained=False).state_dict(), other)
    with pytest.raises(ValueError, match="does not fit timm's test_efficientnet"):
        build_encoder("test_efficientnet", pretrained=other)


def test_position_mapping_checks_count_and_shapes():
    target = {"a": torch.zeros(2, 3), "b": torch.zeros(4)}
    assert list(map_by_position({"x": torch.ones(2, 3), "y": torch.ones(4)}, target, "f", "net")) == ["a", "b"]
    with pytest.raises(ValueError, match="holds 1 tensors, net has 2"):
        map_by_position({"x": torch.ones(2, 3)}, target, "f", "net")
    with pytest.raises(ValueError, match=r"tensor 1 y has shape \(5,\), but net's b needs \(4,\)"):
        map_by_position({"x": torch.ones(2, 3), "y": torch.ones(5)}, target, "f", "net")


def test_freeze_survives_a_parent_train_call():
    net = freeze(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    parent = nn.Sequential(net, nn.Conv2d(4, 4, 1)).train()
    assert not any(m.training for m in net.modules()) and parent[1].training
    assert not any(p.requires_grad for p in net.parameters())
    clone = copy.deepcopy(parent).train()
    assert not clone[0].training and not clone[0][1].training
    stats = net[1].running_mean.clone()
    parent(torch.rand(2, 3, 8, 8))
    assert torch.equal(net[1].running_mean, stats)


@pytest.mark.parametrize("name, channels", [("efficientnet_lite1", [24, 40, 112, 320]),
                                            ("efficientnet_lite2", [24, 48, 120, 352])])
def test_lite1_and_lite2_packages_land_on_timm_keys_in_order(name, channels):
    package_state = read_state_dict(ENCODERS[name].weights())
    net = build_encoder(name, num_classes=1000)
    assert len(net.state_dict()) == len(package_state)
    for (_, theirs), (_, ours) in zip(package_state.items(), net.state_dict().items()):
        assert torch.equal(theirs, ours)
    assert net.bn1.eps == 1e-3 and encoder_normalization(net) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    maps = build_encoder(name, features_only=True, out_indices=(1, 2, 3, 4))  # the projected D's taps
    assert maps.feature_info.channels() == channels and maps.feature_info.reduction() == [4, 8, 16, 32]


def test_mapped_lite1_recognises_zebras():
    """Position mapping that drifted by one tensor would still load (shapes repeat); a wrong answer shows it."""
    files = sorted(shared_data("horse2zebra/trainB").glob("*.jpg"))[:8]
    pixels = [np.array(Image.open(f).convert("RGB").resize((240, 240), Image.BICUBIC)) for f in files]
    x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255
    net = build_encoder("efficientnet_lite1", num_classes=1000)
    with torch.no_grad():
        probs = net(Normalize(net)(x)).softmax(1)
    assert len(files) == 8 and (probs.argmax(1) == ZEBRA_CLASS).all()
    assert probs[:, ZEBRA_CLASS].mean() > 0.4  # measured 0.63
