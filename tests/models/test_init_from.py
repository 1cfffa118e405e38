"""model.init_from: generators start from an export's or a reference file's weights; everything else is untouched."""

from __future__ import annotations

import pytest
import torch

from translate import config
from translate.export import write_export
from translate.models import MODELS

PIX2PIX = ["model.name=pix2pix", "model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4"]
CYCLEGAN = ["model.name=cyclegan", "model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4",
            "model.lambda_identity=0"]


def build(*overrides: str, seed: int = 0):
    torch.manual_seed(seed)
    cfg = config.load(None, list(overrides))
    return cfg, MODELS[cfg.model.name].build(cfg.model)


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_pix2pix_export_starts_the_generator_and_its_ema_and_leaves_d_alone(tmp_path):
    cfg, trained = build(*PIX2PIX, seed=1)
    export = write_export(tmp_path / "export", trained.export_nets(), cfg)
    _, fresh = build(*PIX2PIX, seed=2)
    _, tuned = build(*PIX2PIX, f"model.init_from={export}", "model.tricks.ema_decay=0.9", seed=2)
    assert same(tuned.raw["G"], trained.raw["G"]) and not same(fresh.raw["G"], trained.raw["G"])
    assert same(tuned.raw["D"], fresh.raw["D"])  # only generators are fine-tuned from the source
    assert all(torch.equal(tuned.ema["G"].shadow[k], v) for k, v in trained.raw["G"].state_dict().items())


def test_a_single_generator_starts_the_first_one_of_a_cyclegan(tmp_path):
    cfg, trained = build(*PIX2PIX, "model.norm=instance", "model.dropout=false", seed=1)  # CycleGAN's G
    export = write_export(tmp_path / "export", trained.export_nets(), cfg)
    _, fresh = build(*CYCLEGAN, seed=2)
    _, tuned = build(*CYCLEGAN, f"model.init_from={export}", seed=2)
    assert same(tuned.raw["G_AB"], trained.raw["G"]) and same(tuned.raw["G_BA"], fresh.raw["G_BA"])


def test_a_cyclegan_export_starts_both_generators_by_name(tmp_path):
    cfg, source = build(*CYCLEGAN, seed=5)
    export = write_export(tmp_path / "export", source.export_nets(), cfg)
    _, tuned = build(*CYCLEGAN, f"model.init_from={export}", seed=2)
    assert same(tuned.raw["G_AB"], source.raw["G_AB"]) and same(tuned.raw["G_BA"], source.raw["G_BA"])


def test_a_reference_pth_file_with_its_dataparallel_prefix(tmp_path):
    _, source = build(*CYCLEGAN, seed=3)
    torch.save({f"module.{k}": v for k, v in source.raw["G_AB"].state_dict().items()}, tmp_path / "latest_net_G.pth")
    _, tuned = build(*CYCLEGAN, f"model.init_from={tmp_path / 'latest_net_G.pth'}", seed=2)
    assert same(tuned.raw["G_AB"], source.raw["G_AB"])


def test_weights_of_another_architecture_are_one_line_naming_what_does_not_fit(tmp_path):
    cfg, other = build(*PIX2PIX, "model.ngf=8", seed=1)
    export = write_export(tmp_path / "export", other.export_nets(), cfg)
    with pytest.raises(ValueError, match=r"init_from=.*do not fit generator G: .*tensors of another shape"):
        build(*PIX2PIX, f"model.init_from={export}")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="init_from: .*junk.pth is not a PyTorch checkpoint"):
        build(*PIX2PIX, f"model.init_from={tmp_path / 'junk.pth'}")
    with pytest.raises(FileNotFoundError, match="missing does not exist"):
        build(*PIX2PIX, f"model.init_from={tmp_path / 'missing'}")


def test_a_resumed_run_does_not_need_its_fine_tuning_source(aligned_root, tmp_path):
    from translate.training.loop import train

    cfg, source = build(*PIX2PIX, seed=1)
    export = write_export(tmp_path / "source", source.export_nets(), cfg)
    run = [*PIX2PIX, f"data.root={aligned_root}", "data.load_size=32", "data.crop_size=32", "data.num_workers=0",
           "train.decay_steps=0", "train.checkpoint_every=2", f"model.init_from={export}"]
    train(config.load(None, [*run, "train.max_steps=2"]), tmp_path / "run")
    (export / "G.safetensors").unlink()
    train(config.load(None, [*run, "train.max_steps=4"]), tmp_path / "run", resume=True)
    assert (tmp_path / "run" / "checkpoints" / "step_00000004").is_dir()
