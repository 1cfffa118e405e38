"""Export -> load gives the same outputs; reference-format .pth files load with the documented key mapping."""

import json

import pytest
import torch

from translate import config
from translate.export import load_generator, load_reference_generator, read_export_config, write_export
from translate.models import MODELS


def build(overrides):
    cfg = config.load(None, overrides)
    return cfg, MODELS[cfg.model.name].build(cfg.model)


@pytest.mark.parametrize("overrides, net", [
    (["model.name=pix2pix", "model.generator=unet_128", "model.ngf=4", "model.ndf=4"], "G"),
    (["model.name=cyclegan", "model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4"], "G_BA"),
    (["model.name=cyclegan", "model.generator=resnet_6blocks", "model.ngf=4", "model.channels_a=1",
      "model.channels_b=4", "model.lambda_identity=0"], "G_AB"),
])
def test_export_then_load_gives_identical_outputs(overrides, net, tmp_path):
    cfg, model = build(overrides)
    module, spec = model.export_nets()[net]
    write_export(tmp_path / "export", model.export_nets(), cfg)
    loaded = load_generator(tmp_path / "export", net=net, mode="eval")
    x = torch.randn(2, spec["in_channels"], 128, 128)
    module.eval()
    assert torch.equal(module(x), loaded(x))
    assert loaded(x).shape[1] == spec["out_channels"]


def test_export_describes_itself(tmp_path):
    cfg, model = build(["model.name=cyclegan", "model.ngf=4", "model.ndf=4", "data.crop_size=128"])
    write_export(tmp_path / "export", model.export_nets(), cfg)
    description = read_export_config(tmp_path / "export")
    assert description["model"] == "cyclegan"
    spec = description["nets"]["G_AB"]
    assert spec["arch"] == "resnet_9blocks" and spec["kwargs"]["norm"] == "instance"
    assert spec["inference_mode"] == "eval" and spec["size_multiple"] == 4
    assert description["preprocess"]["crop_size"] == 128
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["G_AB.safetensors", "G_BA.safetensors",
                                                                       "config.json"]


def test_export_is_replaced_whole(tmp_path):
    cfg, model = build(["model.name=pix2pix", "model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4"])
    write_export(tmp_path / "export", model.export_nets(), cfg)
    (tmp_path / "export" / "stale.txt").write_text("left from before")
    write_export(tmp_path / "export", model.export_nets(), cfg)
    assert not (tmp_path / "export" / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_ema_weights_are_exported(tmp_path):
    cfg, model = build(["model.name=pix2pix", "model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4",
                        "model.tricks.ema_decay=0.5"])
    g = model.raw["G"]
    before = {k: v.clone() for k, v in g.state_dict().items()}
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
    model.ema["G"].update(g)
    exported, _ = model.export_nets()["G"]
    key = "model.1.weight"
    assert torch.allclose(exported.state_dict()[key], before[key] + 0.5)
    assert torch.allclose(g.state_dict()[key], before[key] + 1.0)  # the live net is untouched


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        load_generator(tmp_path)
    cfg, model = build(["model.name=cyclegan", "model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4"])
    write_export(tmp_path / "export", model.export_nets(), cfg)
    with pytest.raises(ValueError, match=r"choose one \(--net on the command line"):
        load_generator(tmp_path / "export")
    with pytest.raises(ValueError, match="no generator net 'G'"):
        load_generator(tmp_path / "export", net="G")
    description = json.loads((tmp_path / "export" / "config.json").read_text())
    description["format"] = 99
    (tmp_path / "export" / "config.json").write_text(json.dumps(description))
    with pytest.raises(ValueError, match="unsupported export format"):
        load_generator(tmp_path / "export", net="G_AB")


def test_reference_pth_with_dataparallel_prefix_and_instance_norm_stats_loads(tmp_path):
    from tests.backbones import reference_arch

    reference = reference_arch.RefResnetGenerator(3, 3, ngf=8, norm_layer=reference_arch.ref_norm_layer("instance"),
                                               n_blocks=6)
    state = {f"module.{k}": v for k, v in reference.state_dict().items()}
    state["module.model.2.running_mean"] = torch.zeros(8)  # what pre-0.4 InstanceNorm checkpoints carry
    state["module.model.2.running_var"] = torch.ones(8)
    torch.save(state, tmp_path / "latest_net_G_A.pth")
    ours = load_reference_generator(tmp_path / "latest_net_G_A.pth", "resnet_6blocks", norm="instance", ngf=8).eval()
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(ours(x), reference.eval()(x), atol=1e-6)


def test_reference_loader_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"model.1.weight": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(Exception, match="[Ww]eights only"):
        load_reference_generator(tmp_path / "evil.pth", "resnet_6blocks")


def test_exported_weights_get_the_permissions_of_the_umask(tmp_path):
    import os
    import stat

    from tests.helpers import make_cyclegan_export

    old = os.umask(0o022)
    try:
        export = make_cyclegan_export(tmp_path / "export")
    finally:
        os.umask(old)
    assert {stat.S_IMODE(p.stat().st_mode) for p in export.glob("*.safetensors")} == {0o644}
