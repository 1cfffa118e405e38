"""End-to-end runs of THE loop on tiny generated data: outputs, resume after kill -9, DDP, mixed precision."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers import (
    CLASSIFIER_TINY,
    CYCLEGAN_TINY,
    HINTED,
    PIX2PIX_TINY,
    TINY_SETUPS,
    assert_same_weights,
    train_until_killed,
    write_images,
    write_labeled,
)
from translate import config
from translate.export import load_generator, read_export_config
from translate.models import MODELS
from translate.training.loop import train

PIX2PIX, CYCLEGAN = PIX2PIX_TINY, CYCLEGAN_TINY
REPO = Path(__file__).resolve().parents[2]


def test_pix2pix_run_writes_config_metrics_samples_checkpoints_export(aligned_root, tmp_path):
    run = tmp_path / "run"
    export = train(config.load(None, [*PIX2PIX, f"data.root={aligned_root}"]), run)
    assert config.load(run / "config.yaml").train.max_steps == 4
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert {"loss_D", "loss_G_GAN", "loss_G_L1", "lr_G", "lr_D", "sec_per_step", "images_per_s"} <= set(records[-1])
    assert records[0]["lr_G"] == pytest.approx(2e-4) and records[-1]["lr_G"] < records[0]["lr_G"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_00000002.png", "step_00000004.png"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000002", "step_00000004"]
    assert list((run / "logs").rglob("events.out.tfevents*")), "TensorBoard tracker wrote nothing"
    events = EventAccumulator(str(next((run / "logs").rglob("events.out.tfevents*")).parent)).Reload()
    shown = events.Images("samples")  # the sample grids beside the scalars, as the PNGs show them
    assert [image.step for image in shown] == [2, 4]
    logged = np.asarray(Image.open(io.BytesIO(shown[-1].encoded_image_string)).convert("RGB"), dtype=int)
    saved = np.asarray(Image.open(run / "samples" / "step_00000004.png").convert("RGB"), dtype=int)
    assert logged.shape == saved.shape and np.abs(logged - saved).max() <= 1  # TensorBoard truncates, PNG rounds
    description = read_export_config(export)
    assert description["nets"]["G"]["arch"] == "resnet_6blocks"
    assert description["nets"]["G"]["inference_mode"] == "train"  # pix2pix paper: dropout and batch stats at test
    generator = load_generator(export)
    assert generator.training
    assert generator(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_existing_run_is_not_overwritten_without_resume(aligned_root, tmp_path):
    cfg = config.load(None, [*PIX2PIX, f"data.root={aligned_root}", "train.max_steps=2"])
    train(cfg, tmp_path / "run")
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(cfg, tmp_path / "other", resume=True)


# What each model draws at random or carries as state beyond its nets and optimizers, turned on so that a resume must
# restore it too. A model not named here resumes with its tiny setup as it is.
RESUME_EXTRAS = {
    "pix2pix": ["model.tricks.label_flip_prob=0.3", "model.tricks.instance_noise=0.1",
                "model.tricks.instance_noise_steps=3"],
    "cyclegan": ["model.tricks.diffaugment=color,translation,cutout", "model.tricks.ema_decay=0.9"],
    "cut": ["model.mode=fastcut", "model.nce_idt=true", "model.tricks.ema_decay=0.9"],  # flips, second PatchNCE
    "crossmatch": ["model.ema_decay=0.9", "data.sketch_augment=all", "data.batch_size=2"],
    "dann": ["model.ema_decay=0.9"],
    "classifier": ["model.ema_decay=0.9"],
}
# pix2pix reading colour hints (drawn per sample) with a domain classifier on its encoder (its own net, optimizer
# and target draws): {drawn} is a folder of target images
HINTS_AND_DOMAIN = ["model.generator=unet_lite1", *HINTED, "model.domain_weight=1",
                    "data.target={drawn}"]
TARGET_GAN = ["model.target_gan_weight=1", "data.target={drawn}"]  # ... or a second D on the outputs (D_T)


@pytest.mark.parametrize("name, extra", [*((name, RESUME_EXTRAS.get(name, [])) for name in MODELS),
                                         ("pix2pix", HINTS_AND_DOMAIN), ("pix2pix", TARGET_GAN)],
                         ids=[*MODELS, "pix2pix-hints-domain", "pix2pix-target-gan"])
def test_resume_after_kill_equals_uninterrupted(name, extra, tmp_path):
    if any("{drawn}" in e for e in extra):
        write_images(tmp_path / "drawn", 3, (32, 32), seed=5)
    overrides = [*TINY_SETUPS[name](tmp_path / "data"), *(e.format(drawn=tmp_path / "drawn") for e in extra),
                 "train.max_steps=6", "train.decay_steps=3", "train.checkpoint_every=3",
                 "train.log_every=1"]  # the lr decays across it
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("{}\n")
    uninterrupted = train(config.load(recipe, overrides), tmp_path / "straight")

    killed = train_until_killed(recipe, overrides, tmp_path / "resumed")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir()) == ["step_00000003"]
    assert not (tmp_path / "resumed" / "export").exists()
    resumed = train(config.load(recipe, overrides), tmp_path / "resumed", resume=True)

    assert_same_weights(uninterrupted, resumed)
    last = Path("checkpoints", "step_00000006", "nets")  # every net, the ones not exported (D, CUT's F) too
    assert_same_weights(tmp_path / "straight" / last, tmp_path / "resumed" / last)
    steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_cyclegan_bf16_mixed_precision_trains(unaligned_root, tmp_path):
    export = train(config.load(None, [*CYCLEGAN, f"data.root={unaligned_root}", "train.mixed_precision=bf16",
                                      "train.max_steps=2", "train.channels_last=true"]), tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(v)) for r in records for k, v in r.items() if k.startswith("loss"))
    assert set(read_export_config(export)["nets"]) == {"G_AB", "G_BA"}
    weights = load_file(export / "G_AB.safetensors")
    assert all(t.dtype == torch.float32 for t in weights.values())


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks CPU DDP; on a GPU machine --multi_gpu uses the GPUs")
def test_two_process_ddp_on_cpu(unaligned_root, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("{}\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # `accelerate launch --cpu --num_processes 2` runs ONE process unless MPI is set up; on a machine without GPUs
    # --multi_gpu starts torchrun-style workers that Accelerate runs as MULTI_CPU DDP over gloo.
    done = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                           "-m", "translate", "train", str(recipe), *CYCLEGAN, f"data.root={unaligned_root}",
                           "train.max_steps=3", "--run-dir", str(tmp_path / "run")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("export: ") == 1  # one rank reports where the export is
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]  # main process logs once per step
    assert records[-1]["images_per_s"] > 0
    checkpoint = tmp_path / "run" / "checkpoints" / "step_00000003"
    assert (checkpoint / "rng_1.pt").exists(), "the second rank never ran"
    g = load_generator(tmp_path / "run" / "export", net="G_AB")
    assert g(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_periodic_eval_logs_scores_and_keeps_the_best_export(aligned_root, tmp_path, monkeypatch):
    from translate.evaluation import api

    write_images(aligned_root / "val", 4, (64, 32), seed=5)
    run = tmp_path / "run"
    extractions, features_of_real = [], api.features_of_real
    monkeypatch.setattr(api, "features_of_real", lambda *a, **k: extractions.append(1) or features_of_real(*a, **k))
    train(config.load(None, [*PIX2PIX, f"data.root={aligned_root}", "eval.every=2", "eval.metrics=[paired, fid]",
                             "eval.best=l1", "eval.max_images=3"]), run)
    assert len(extractions) == 1  # two evaluations; the fixed references' features are extracted once
    evals = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "eval/l1" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert {"eval/psnr", "eval/ssim", "eval/perceptual", "eval/fid", "eval/kid_mean"} <= set(evals[0])
    best = json.loads((run / "export_best" / "best.json").read_text())
    assert best["l1"] == min(r["eval/l1"] for r in evals)
    assert best["step"] in (2, 4)
    assert load_generator(run / "export_best")(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_unknown_best_metric_is_an_error(aligned_root, tmp_path):
    with pytest.raises(ValueError, match="eval.best='fidd'"):
        train(config.load(None, [*PIX2PIX, f"data.root={aligned_root}", "eval.every=2", "eval.best=fidd"]),
              tmp_path / "run")


def test_a_diverging_run_stops_before_saving_or_exporting_nan(aligned_root, tmp_path, capsys):
    from translate import cli

    run = tmp_path / "run"
    code = cli.main(["train", str(_empty_recipe(tmp_path)), *PIX2PIX, f"data.root={aligned_root}", "model.lr=1e38",
                     "train.max_steps=50", "--run-dir", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and "translate train: error: step 1: loss_G_GAN=nan: training diverged" in err, err[-500:]
    assert not (run / "export").exists()
    assert not (run / "metrics.jsonl").exists() and not (run / "checkpoints").exists()  # step 1 logged nothing


def _empty_recipe(tmp_path: Path) -> Path:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("{}\n")
    return recipe


def test_values_from_the_data_are_in_config_yaml_and_the_export(tmp_path):
    root = write_labeled(tmp_path / "digits", classes=("zero", "one"), per_class=2)
    run = tmp_path / "run"
    export = train(config.load(None, [*CLASSIFIER_TINY, f"data.root={root}", "data.load_size=16", "data.crop_size=16",
                                      "data.num_workers=0", "data.batch_size=2", "train.max_steps=1",
                                      "train.decay_steps=0"]), run)
    saved = config.load(run / "config.yaml")
    assert saved.model.classes == ["one", "zero"]  # the sorted class folders, resolved before config.yaml
    assert read_export_config(export)["training_config"] == saved.to_dict()


def test_weights_that_overflowed_are_never_saved(tmp_path):
    from translate.training.loop import DivergedError, check_finite_weights

    net = torch.nn.Linear(2, 2)
    check_finite_weights({"G": net}, 3, tmp_path)  # finite: passes
    with torch.no_grad():
        net.weight[0, 1] = float("inf")
    with pytest.raises(DivergedError, match=r"step 3: G\.weight holds NaN or infinite values"):
        check_finite_weights({"G": net}, 3, tmp_path)


def test_max_minutes_stops_with_a_checkpoint_and_an_export_and_resume_continues_the_clock(aligned_root, tmp_path):
    run = tmp_path / "run"
    overrides = [*PIX2PIX, f"data.root={aligned_root}", "train.max_steps=1000", "train.checkpoint_every=1000"]
    export = train(config.load(None, [*overrides, "train.max_minutes=0.00001"]), run)  # out of time after step 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000001"]
    assert load_generator(export)(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    first = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in first] == [1] and first[0]["train_minutes"] > 0
    train(config.load(None, [*overrides, "train.max_minutes=0.00002"]), run, resume=True)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] >= 2 and records[-1]["train_minutes"] > first[0]["train_minutes"]


def test_log_with_none_writes_no_tracker_files(aligned_root, tmp_path):
    run = tmp_path / "run"
    train(config.load(None, [*PIX2PIX, f"data.root={aligned_root}", "train.max_steps=2", "train.decay_steps=0",
                             "train.log_with=none"]), run)
    assert not (run / "logs").exists() and (run / "metrics.jsonl").is_file() and (run / "samples").is_dir()
