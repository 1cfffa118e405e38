"""train.mixed_precision=auto: bf16 where the hardware has it, recorded, and kept by a resume on any machine."""

from __future__ import annotations

import logging

import pytest
import torch

from tests.helpers import PIX2PIX_TINY
from translate import config
from translate.catalog import RECIPES
from translate.training import precision
from translate.training.loop import train

TINY = [*PIX2PIX_TINY, "train.mixed_precision=auto", "train.checkpoint_every=1", "train.decay_steps=0"]


@pytest.mark.parametrize(("native", "chosen", "said"), [(True, "bf16", "computes bf16 natively"),
                                                       (False, "no", "no native bf16")])
def test_auto_is_bf16_exactly_where_the_machine_has_it_and_says_why(native, chosen, said, monkeypatch, caplog):
    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    cfg = config.load(None, ["model.name=pix2pix", "train.mixed_precision=auto"])
    with caplog.at_level(logging.INFO, logger=precision.__name__):
        precision.resolve_auto_precision(cfg, torch.device("cpu"))
    assert cfg.train.mixed_precision == chosen
    assert said in caplog.text


@pytest.mark.parametrize("given", ["no", "bf16", "fp16"])
def test_a_precision_given_by_name_is_left_alone(given, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device: given != "bf16")
    cfg = config.load(None, ["model.name=pix2pix", f"train.mixed_precision={given}"])
    precision.resolve_auto_precision(cfg, torch.device("cpu"))
    assert cfg.train.mixed_precision == given


def test_the_probe_answers_for_this_cpu_without_raising():
    assert isinstance(precision.native_bf16(torch.device("cpu")), bool)
    assert precision.native_bf16(torch.device("meta")) is False


def test_the_run_records_its_choice_and_a_resume_elsewhere_keeps_it(aligned_root, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)
    train(config.load(None, [*TINY, f"data.root={aligned_root}", "train.max_steps=1"]), tmp_path / "run")
    assert config.load(tmp_path / "run" / "config.yaml").train.mixed_precision == "bf16"

    monkeypatch.setattr(precision, "native_bf16", lambda device: False)  # resumed on a machine without bf16
    train(config.load(None, [*TINY, f"data.root={aligned_root}", "train.max_steps=2"]), tmp_path / "run",
          resume=True)  # a resume that chose fp32 here would be refused: the saved config says bf16
    assert config.load(tmp_path / "run" / "config.yaml").train.mixed_precision == "bf16"


@pytest.mark.parametrize("preset", ["cpu", "cpu_30"])
def test_the_horse2zebra_budget_presets_ask_for_auto(preset):
    cfg = config.load(RECIPES / "horse2zebra.yaml", preset=preset)
    assert cfg.train.mixed_precision == "auto" and cfg.train.budget_minutes > 0
