"""The cross-domain embedding (crossmatch): the symmetric InfoNCE against a direct re-implementation, where the
gradients of each loss go, the no-adaptation baseline, and an export that `translate eval retrieval` embeds with."""

import math
from pathlib import Path

import pytest
import torch

from tests.helpers import CROSSMATCH_TINY, FakeAccelerator, tiny_model, write_images
from translate import config
from translate.export import load_classifier, load_encoder, write_export
from translate.losses import cross_domain_nce
from translate.models import MODELS
from translate.models.common import Progress
from translate.models.crossmatch import is_known_pair, make_dataset


def test_cross_domain_nce_equals_a_direct_implementation():
    torch.manual_seed(0)
    q, g, tau = torch.randn(5, 7), torch.randn(5, 7), 0.1
    unit_q, unit_g = q / q.norm(dim=1, keepdim=True), g / g.norm(dim=1, keepdim=True)
    total = 0.0
    for i in range(5):  # each sketch picks its photo among all photos, and each photo its sketch
        row = [math.exp(float(unit_q[i] @ unit_g[j]) / tau) for j in range(5)]
        col = [math.exp(float(unit_g[i] @ unit_q[j]) / tau) for j in range(5)]
        total += -math.log(row[i] / sum(row)) - math.log(col[i] / sum(col))
    assert cross_domain_nce(q, g, tau).item() == pytest.approx(total / 10, rel=1e-5)


def test_cross_domain_nce_is_lowest_when_pairs_coincide():
    torch.manual_seed(0)
    photos = torch.randn(8, 16)
    assert cross_domain_nce(photos, photos) < cross_domain_nce(photos, photos.roll(1, 0))


def test_cross_domain_nce_drops_a_pair_drawn_twice_from_the_negatives():
    """Rows 0 and 2 are the same pair (two crops): neither is a negative of the other; the loss equals the direct
    sums over the other pair's rows only, and differs from the unmasked loss."""
    torch.manual_seed(0)
    q, g, tau = torch.randn(4, 6), torch.randn(4, 6), 0.2
    instance = torch.tensor([0, 1, 0, 3])
    unit_q, unit_g = q / q.norm(dim=1, keepdim=True), g / g.norm(dim=1, keepdim=True)
    total = 0.0
    for i in range(4):
        others = [j for j in range(4) if j == i or instance[j] != instance[i]]
        row = {j: math.exp(float(unit_q[i] @ unit_g[j]) / tau) for j in others}
        col = {j: math.exp(float(unit_g[i] @ unit_q[j]) / tau) for j in others}
        total += -math.log(row[i] / sum(row.values())) - math.log(col[i] / sum(col.values()))
    masked = cross_domain_nce(q, g, tau, instance)
    assert masked.item() == pytest.approx(total / 8, rel=1e-5)
    assert masked.item() != pytest.approx(cross_domain_nce(q, g, tau).item(), rel=1e-3)
    assert cross_domain_nce(q, g, tau, torch.arange(4)).item() == pytest.approx(cross_domain_nce(q, g, tau).item())


def _first_pair_twice(batch: dict) -> dict:
    """Rows 0, 1, 0, 2 of a batch: four rows, the first pair drawn twice."""
    return {key: value[[0, 1, 0, 2]] if torch.is_tensor(value) else [value[i] for i in (0, 1, 0, 2)]
            for key, value in batch.items()}


def test_a_pair_drawn_twice_into_a_batch_is_no_negative_of_itself(tmp_path):
    """The model names each row's pair by its file: a batch holding one pair twice gives the masked InfoNCE."""
    _, model, batch = tiny_model("crossmatch", tmp_path, "model.domain_weight=0")
    twice = _first_pair_twice(batch)
    net = model.raw["embedder"].eval()  # eval: batch norm statistics would mix the rows
    with torch.no_grad():
        embedded = net(torch.cat([twice["A"], twice["B"]]))
    expected = cross_domain_nce(embedded[:4], embedded[4:], model.cfg.temperature, torch.tensor([0, 1, 0, 3]))
    out = model.train_step(twice, FakeAccelerator(), Progress(0, 10))
    assert out["loss_match"] == pytest.approx(expected.item(), rel=1e-5)


def test_batch_recall_counts_the_twin_of_a_pair_drawn_twice_as_a_hit(tmp_path):
    """Photos equal to their sketches, one pair twice: every sketch's nearest photo is its own or its twin's (a tie
    that argmax settles on the first), so the in-batch Recall@1 is 1."""
    _, model, batch = tiny_model("crossmatch", tmp_path, "model.domain_weight=0")
    twice = _first_pair_twice(batch)
    twice["B"] = twice["A"].clone()
    assert model.train_step(twice, FakeAccelerator(), Progress(0, 10))["batch_recall@1"] == 1.0


def test_step_trains_the_embedder_and_the_domain_classifier_through_reversal(tmp_path):
    _, model, batch = tiny_model("crossmatch", tmp_path)
    out = model.train_step(batch, FakeAccelerator(), Progress(5, 10))
    assert {"loss_match", "batch_recall@1", "loss_domain", "acc_domain", "grl_lambda"} <= set(out)
    assert all(p.grad is not None for p in model.raw["domain"].parameters())
    assert all(p.grad is not None for p in model.raw["embedder"].parameters())


def test_the_domain_gradient_reaches_the_embedder_reversed(tmp_path):
    """Only the domain loss (match loss scaled away): the embedder's gradient is -lambda times what it would get
    if it helped D, i.e. the gradient of +L_d with the reversal switched off, times -lambda."""
    grads, lambdas = [], []
    for reversal in (True, False):
        _, model, batch = tiny_model("crossmatch", tmp_path / str(reversal), "model.temperature=1e6")
        if not reversal:  # the same network without the reversal: an identity layer in its place
            model.raw["domain"].grl = torch.nn.Identity()
        model.train_step(batch, FakeAccelerator(), Progress(5, 10))
        lambdas.append(model.raw["domain"].grl.lambd)
        grads.append(torch.cat([p.grad.flatten() for p in model.raw["embedder"].head.parameters()]))
    assert 0 < lambdas[0] < 1
    assert torch.allclose(grads[0], -lambdas[0] * grads[1], atol=1e-6)


def test_domain_weight_zero_is_the_no_adaptation_baseline(tmp_path):
    _, model, batch = tiny_model("crossmatch", tmp_path, "model.domain_weight=0")
    assert set(model.nets) == {"embedder"}
    assert set(model.train_step(batch, FakeAccelerator(), Progress(0, 10))) == {"loss_match", "batch_recall@1",
                                                                                 "known_pairs"}


def test_the_domain_classifier_learns_at_its_own_multiple_of_the_lr(tmp_path):
    """One optimizer (one step for DDP), two groups: the fine-tuned embedder at model.lr, the domain classifier at
    domain_lr_mult times it; every parameter in exactly one group, and the baseline has the embedder's alone."""
    _, model, _ = tiny_model("crossmatch", tmp_path, "model.lr=0.001", "model.domain_lr_mult=10")
    embedder, domain = model.optimizers["crossmatch"].param_groups
    assert embedder["lr"] == pytest.approx(0.001) and domain["lr"] == pytest.approx(0.01)
    assert {id(p) for p in embedder["params"]} == {id(p) for p in model.raw["embedder"].parameters()}
    assert {id(p) for p in domain["params"]} == {id(p) for p in model.raw["domain"].parameters()}
    _, baseline, _ = tiny_model("crossmatch", tmp_path / "baseline", "model.domain_weight=0", "model.lr=0.001")
    assert [group["lr"] for group in baseline.optimizers["crossmatch"].param_groups] == [pytest.approx(0.001)]


def test_known_pairs_are_a_stable_share_of_the_names():
    names = [f"train/{i}_AB.jpg" for i in range(2000)]
    quarter = [is_known_pair(name, 0.25) for name in names]
    assert 0.22 < sum(quarter) / len(names) < 0.28
    assert quarter == [is_known_pair(name, 0.25) for name in names]  # no salted hash(): the same in every process
    assert all(is_known_pair(name, 1.0) for name in names) and not any(is_known_pair(name, 0.0) for name in names)
    half = [is_known_pair(name, 0.5) for name in names]
    assert all(h for q, h in zip(quarter, half) if q)  # a larger share keeps the smaller one's pairs


def test_unknown_pairs_do_not_reach_the_match_loss(tmp_path):
    """Without adaptation only the known pairs count: the match loss is the InfoNCE of their rows alone, whatever
    the unknown pairs' images are (noise here)."""
    _, model, batch = tiny_model("crossmatch", tmp_path, "model.domain_weight=0", "data.batch_size=8")
    names = [Path(p).name for p in batch["A_path"]]
    share = next(s for s in (0.3, 0.4, 0.5, 0.6, 0.7) if 1 < sum(is_known_pair(n, s) for n in names) < len(names))
    known = torch.tensor([is_known_pair(n, share) for n in names])
    model.cfg.known_pairs = share
    net = model.raw["embedder"].eval()  # eval: batch norm statistics would mix the rows
    with torch.no_grad():
        known_names = [n for n, k in zip(names, known) if k]  # the tiny set is drawn more than once a batch
        instance = torch.tensor([known_names.index(n) for n in known_names])
        expected = cross_domain_nce(net(batch["A"][known]), net(batch["B"][known]), model.cfg.temperature, instance)
    noisy = dict(batch, A=batch["A"].clone(), B=batch["B"].clone())
    noisy["A"][~known], noisy["B"][~known] = torch.randn_like(noisy["A"][~known]), torch.randn_like(noisy["B"][~known])
    out = model.train_step(noisy, FakeAccelerator(), Progress(0, 10))
    assert out["loss_match"] == pytest.approx(expected.item(), rel=1e-5)
    assert out["known_pairs"] == pytest.approx(known.float().mean().item())


def _half_known(tmp_path: Path, *overrides: str):
    """(config, names of the known pairs, names of all pairs) of 12 aligned pairs with known_pairs=0.5."""
    (root := tmp_path / "aligned" / "train").mkdir(parents=True)
    write_images(root, 12, (32, 16), seed=0)
    known = {p.name for p in root.iterdir() if is_known_pair(str(p), 0.5)}
    assert 0 < len(known) < 12
    cfg = config.load(None, [*CROSSMATCH_TINY, f"data.root={tmp_path / 'aligned'}", "model.known_pairs=0.5",
                             *overrides])
    return cfg, known, {p.name for p in root.iterdir()}


def test_without_adaptation_the_training_set_is_the_known_pairs_alone(tmp_path):
    """The unknown pairs would feed no loss: left out, so that batches are full of pairs. Evaluation data keeps
    every pair."""
    cfg, known, _ = _half_known(tmp_path, "model.domain_weight=0")
    assert {Path(a).name for a, _ in make_dataset(cfg.data, cfg.model, train=True).pairs} == known
    assert len(make_dataset(cfg.data, cfg.model, train=False)) == 12
    cfg.model.known_pairs = 0.0
    with pytest.raises(ValueError, match="none of the training pairs"):
        make_dataset(cfg.data, cfg.model, train=True)


def test_with_adaptation_each_known_pair_carries_an_unpaired_sketch_and_photo(tmp_path):
    cfg, known, names = _half_known(tmp_path, "model.domain_weight=0.1")
    dataset = make_dataset(cfg.data, cfg.model, train=True)
    assert len(dataset) == len(known)
    assert {Path(a).name for a, _ in dataset.known.pairs} == known
    assert {Path(a).name for a, _ in dataset.unknown.pairs} == names - known
    item = dataset[(0, 7)]
    assert Path(item["A_path"]).name in known and item["A_unpaired"].shape == item["A"].shape
    again = dataset[(0, 7)]  # the draws come from the key: the same item on resume, in any worker
    assert torch.equal(item["A_unpaired"], again["A_unpaired"]) and torch.equal(item["B_unpaired"], again["B_unpaired"])
    unknown_sketches = [dataset.unknown[(i, 0)]["A"] for i in range(len(dataset.unknown))]
    drawn = [dataset[(0, seed)]["A_unpaired"] for seed in range(20)]
    # the unpaired sketch is one of the unknown pairs' sketches (up to its random crop): never a known one
    assert all(any(torch.allclose(d.mean(), u.mean(), atol=0.1) for u in unknown_sketches) for d in drawn)
    assert len({round(float(d.mean()), 4) for d in drawn}) > 1


def test_the_domain_classifier_sees_the_unpaired_images(tmp_path):
    cfg, _, _ = _half_known(tmp_path, "model.domain_weight=0.1")
    dataset = make_dataset(cfg.data, cfg.model, train=True)
    batch = torch.utils.data.default_collate([dataset[(i % len(dataset), i)] for i in range(4)])
    losses = []
    for unpaired_sketches in (batch["A_unpaired"], torch.randn_like(batch["A_unpaired"])):
        torch.manual_seed(0)
        model = MODELS["crossmatch"].build(cfg.model)
        rows = []
        model.raw["domain"].register_forward_hook(lambda module, args, output, rows=rows: rows.append(args[0].shape[0]))
        out = model.train_step(dict(batch, A_unpaired=unpaired_sketches), FakeAccelerator(), Progress(5, 10))
        assert rows == [16]  # 4 sketches + 4 unpaired sketches, then 4 photos + 4 unpaired photos
        assert out["known_pairs"] == 1.0
        losses.append(out["loss_domain"])
    assert losses[0] != losses[1]


def test_a_batch_without_known_pairs_still_gives_every_parameter_a_gradient(tmp_path):
    _, model, batch = tiny_model("crossmatch", tmp_path, "model.domain_weight=0")
    model.cfg.known_pairs = 0.0  # after the dataset was built: its training set would be empty
    out = model.train_step(batch, FakeAccelerator(), Progress(0, 10))
    assert out["loss_match"] == 0 and out["known_pairs"] == 0
    assert all(p.grad is not None for p in model.raw["embedder"].parameters() if p.requires_grad)


def test_export_embeds_with_encoder_and_head_and_is_no_classifier(tmp_path):
    cfg, model, batch = tiny_model("crossmatch", tmp_path)
    export = write_export(tmp_path / "export", model.export_nets(), cfg)
    embedder, spec = load_encoder(export, with_spec=True)
    net = model.raw["embedder"].eval()
    assert spec["role"] == "embedding" and spec["image_size"] == 16
    assert torch.allclose(embedder(batch["A"]), net(batch["A"]), atol=1e-6)
    assert embedder(batch["A"]).shape == (4, 8)
    with pytest.raises(ValueError, match="no classifier nets|classifier"):
        load_classifier(export)
