import math

import pytest
import torch
from torch import nn

from translate import losses
from translate.losses import GAN_MODES


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def full(value: float, shape=(2, 1, 3, 3)) -> torch.Tensor:
    return torch.full(shape, value)


class LinearD(nn.Module):
    """D(x) = <w, x> per sample: its input gradient is w, whatever x is."""

    def __init__(self, shape=(3, 4, 4), seed=0):
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


# --- discriminator_loss / generator_loss --------------------------------------------------------


def test_vanilla_d_loss_at_zero_logits_is_log2():
    loss = losses.discriminator_loss("vanilla", full(0.0), full(0.0))
    assert loss.item() == pytest.approx(0.5 * (math.log(2) + math.log(2)))


def test_vanilla_d_loss_known_value():
    loss = losses.discriminator_loss("vanilla", full(2.0), full(-1.0))
    assert loss.item() == pytest.approx(0.5 * (softplus(-2.0) + softplus(-1.0)), rel=1e-6)


def test_lsgan_d_loss():
    assert losses.discriminator_loss("lsgan", full(1.0), full(0.0)).item() == 0.0
    assert losses.discriminator_loss("lsgan", full(0.0), full(1.0)).item() == pytest.approx(1.0)
    assert losses.discriminator_loss("lsgan", full(0.5), full(0.5)).item() == pytest.approx(0.25)


def test_hinge_and_wgangp_d_loss():
    real = torch.tensor([2.0, 0.5])
    fake = torch.tensor([-2.0, 0.5])
    # hinge: mean(relu(1 - real)) = 0.25, mean(relu(1 + fake)) = 0.75
    assert losses.discriminator_loss("hinge", real, fake).item() == pytest.approx(1.0)
    assert losses.discriminator_loss("wgangp", real, fake).item() == pytest.approx(-0.75 - 1.25)


def test_generator_losses():
    assert losses.generator_loss("vanilla", full(0.0)).item() == pytest.approx(math.log(2))
    assert losses.generator_loss("vanilla", full(3.0)).item() == pytest.approx(softplus(-3.0), rel=1e-6)
    assert losses.generator_loss("lsgan", full(1.0)).item() == 0.0
    assert losses.generator_loss("lsgan", full(0.0)).item() == pytest.approx(1.0)
    for mode in ("hinge", "wgangp"):
        assert losses.generator_loss(mode, torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


@pytest.mark.parametrize("mode", GAN_MODES)
def test_generator_loss_decreases_as_fake_logits_rise(mode):
    values = [losses.generator_loss(mode, full(v)).item() for v in (-3.0, -1.0, 0.0, 0.5)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_tensor_labels_match_numbers():
    real, fake = torch.randn(2, 1, 3, 3), torch.randn(2, 1, 3, 3)
    for mode in ("vanilla", "lsgan"):
        as_numbers = losses.discriminator_loss(mode, real, fake, 0.9, 0.1)
        as_tensors = losses.discriminator_loss(mode, real, fake, torch.full((2, 1, 1, 1), 0.9), torch.tensor(0.1))
        assert torch.allclose(as_numbers, as_tensors)


def test_per_sample_labels():
    real = torch.tensor([[1.0], [0.0]])
    fake = torch.tensor([[0.0], [1.0]])
    # sample 1 flipped: its real target is 0 and its fake target 1, so lsgan is 0 everywhere
    real_target = torch.tensor([[1.0], [0.0]])
    fake_target = torch.tensor([[0.0], [1.0]])
    assert losses.discriminator_loss("lsgan", real, fake, real_target, fake_target).item() == 0.0


def test_unknown_mode():
    with pytest.raises(ValueError, match="'wgan'.*vanilla, lsgan, hinge, wgangp"):
        losses.discriminator_loss("wgan", full(0.0), full(0.0))
    with pytest.raises(ValueError, match="vanilla, lsgan, hinge, wgangp"):
        losses.generator_loss("gan", full(0.0))


@pytest.mark.parametrize("mode", GAN_MODES)
def test_losses_under_bf16_autocast(mode):
    torch.manual_seed(0)
    D = nn.Conv2d(3, 1, 4, stride=2, padding=1)
    real, fake = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        real_logits, fake_logits = D(real), D(fake)
        assert real_logits.dtype == torch.bfloat16
        real_t, fake_t = losses.smoothed_labels(real_logits, 0.9, 0.5)
        d_loss = losses.discriminator_loss(mode, real_logits, fake_logits, real_t, fake_t)
        g_loss = losses.generator_loss(mode, fake_logits)
        l1 = losses.l1_loss(fake, real)
    for loss in (d_loss, g_loss, l1):
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
    d_loss.backward()
    assert torch.isfinite(D.weight.grad).all()


def test_smoothed_targets_are_float32_for_half_logits():
    real_t, _ = losses.smoothed_labels(torch.zeros(2, 1, 2, 2, dtype=torch.bfloat16), 0.9)
    assert real_t.dtype == torch.float32 and torch.all(real_t == torch.tensor(0.9))


# --- smoothed_labels ----------------------------------------------------------------------------


def test_one_sided_smoothing():
    logits = torch.zeros(4, 1, 3, 3)
    real_t, fake_t = losses.smoothed_labels(logits, real_label=0.9)
    assert real_t.shape == fake_t.shape == logits.shape
    assert torch.all(real_t == torch.tensor(0.9)) and torch.all(fake_t == 0)


def test_flip_everything():
    real_t, fake_t = losses.smoothed_labels(torch.zeros(4, 1, 3, 3), real_label=0.9, flip_prob=1.0)
    assert torch.all(real_t == 0) and torch.all(fake_t == torch.tensor(0.9))


def test_flips_per_sample_broadcast_over_patches():
    logits = torch.zeros(2000, 1, 2, 2)
    real_t, fake_t = losses.smoothed_labels(logits, 1.0, flip_prob=0.3, generator=torch.Generator().manual_seed(0))
    assert torch.all(real_t + fake_t == 1)
    per_sample = real_t.flatten(1)
    assert torch.all(per_sample == per_sample[:, :1])  # one draw per sample
    flipped = (per_sample[:, 0] == 0).float().mean().item()
    assert 0.25 < flipped < 0.35


def test_flips_use_global_rng_unless_a_generator_is_given():
    logits = torch.zeros(64, 1, 1, 1)
    torch.manual_seed(1)
    first = losses.smoothed_labels(logits, flip_prob=0.5)[0]
    torch.manual_seed(1)
    assert torch.equal(first, losses.smoothed_labels(logits, flip_prob=0.5)[0])
    a = losses.smoothed_labels(logits, flip_prob=0.5, generator=torch.Generator().manual_seed(3))[0]
    b = losses.smoothed_labels(logits, flip_prob=0.5, generator=torch.Generator().manual_seed(3))[0]
    assert torch.equal(a, b)


# --- gradient penalty and R1 --------------------------------------------------------------------


def test_gradient_penalty_on_linear_d():
    D = LinearD()
    real, fake = torch.randn(5, 3, 4, 4, dtype=torch.float64), torch.randn(5, 3, 4, 4, dtype=torch.float64)
    penalty = losses.gradient_penalty(D, real, fake, weight=10.0)
    norm = D.w.detach().norm()
    assert penalty.item() == pytest.approx(10.0 * (norm.item() - 1.0) ** 2, rel=1e-9)
    penalty.backward()  # create_graph: the penalty trains D
    expected = 10.0 * 2 * (norm - 1.0) * D.w.detach() / norm
    assert torch.allclose(D.w.grad, expected)


def test_gradient_penalty_constant_and_conditioned_input():
    D = LinearD(shape=(6, 4, 4))  # a pix2pix-style D on (condition, image) pairs, concatenated by the caller
    cond = torch.randn(3, 3, 4, 4, dtype=torch.float64)
    real = torch.cat([cond, torch.randn(3, 3, 4, 4, dtype=torch.float64)], 1)
    fake = torch.cat([cond, torch.randn(3, 3, 4, 4, dtype=torch.float64)], 1)
    norm = D.w.detach().norm().item()
    penalty = losses.gradient_penalty(D, real, fake, weight=2.0, constant=norm)
    assert penalty.item() == pytest.approx(0.0, abs=1e-12)


def test_r1_penalty_on_linear_d():
    D = LinearD()
    real = torch.randn(4, 3, 4, 4, dtype=torch.float64).requires_grad_(True)
    penalty = losses.r1_penalty(D(real), real, gamma=10.0)
    w = D.w.detach()
    assert penalty.item() == pytest.approx(5.0 * w.square().sum().item(), rel=1e-9)
    penalty.backward()
    assert torch.allclose(D.w.grad, 10.0 * w)  # d/dw (gamma/2 ||w||^2)


# --- reconstruction -----------------------------------------------------------------------------


def test_l1_cycle_identity():
    a, b = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    for fn in (losses.l1_loss, losses.cycle_loss, losses.identity_loss):
        assert fn(a, b).item() == pytest.approx(0.5)
        assert fn(b.bfloat16(), torch.full((2, 3, 4, 4), 0.25)).dtype == torch.float32


def test_perceptual_loss_is_the_weighted_l1_of_the_stages_with_real_features_fixed():
    torch.manual_seed(0)
    fake = [torch.randn(2, c, s, s, requires_grad=True) for c, s in ((4, 8), (6, 4), (8, 2), (3, 2), (5, 1))]
    real = [torch.randn_like(f, requires_grad=True) for f in fake]
    loss = losses.perceptual_loss(fake, real)
    expected = sum(w * (f - r).abs().sum().item() / f.numel()
                   for w, f, r in zip((1 / 32, 1 / 16, 1 / 8, 1 / 4, 1), fake, real))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert all(f.grad is not None for f in fake) and all(r.grad is None for r in real)  # the target is fixed
    assert losses.perceptual_loss([f.bfloat16() for f in fake], real).dtype == torch.float32
    with pytest.raises(ValueError, match="5 stage weights for 4 fake"):
        losses.perceptual_loss(fake[:4], real[:4])


# --- DTN: total variation and f-constancy -------------------------------------------------------


def test_tv_of_constant_is_zero_with_zero_gradient():
    x = torch.full((2, 3, 8, 8), 0.7, requires_grad=True)
    loss = losses.tv_loss(x)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(x.grad == 0)


def test_tv_on_ramps():
    j = torch.arange(8.0).expand(1, 1, 8, 8)
    i = j.transpose(-1, -2)
    assert losses.tv_loss(0.1 * j).item() == pytest.approx(0.1)  # dx = 0.1, dy = 0
    assert losses.tv_loss(i + j).item() == pytest.approx(math.sqrt(2))  # isotropic: sqrt(1 + 1)
    assert losses.tv_loss(i + j, beta=2.0).item() == pytest.approx(2.0)  # squared form


def test_f_constancy():
    f_x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert losses.f_constancy_loss(f_x, f_x).item() == 0.0
    assert losses.f_constancy_loss(f_x, f_x + 1, "mse").item() == pytest.approx(1.0)
    assert losses.f_constancy_loss(f_x, f_x - 0.5, "l1").item() == pytest.approx(0.5)
    assert losses.f_constancy_loss(f_x, 3 * f_x, "cosine").item() == pytest.approx(0.0, abs=1e-6)
    assert losses.f_constancy_loss(f_x, -f_x, "cosine").item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="'l2'.*mse, l1, cosine"):
        losses.f_constancy_loss(f_x, f_x, "l2")


def test_f_constancy_trains_only_the_generated_side():
    f_x = torch.randn(3, 4, requires_grad=True)
    f_gx = torch.randn(3, 4, requires_grad=True)
    losses.f_constancy_loss(f_x, f_gx).backward()
    assert f_x.grad is None and f_gx.grad is not None


# --- DANN schedule and instance noise -----------------------------------------------------------


def test_grl_lambda():
    assert losses.grl_lambda(0.0) == 0.0
    assert losses.grl_lambda(1.0) == pytest.approx(0.9999, abs=1e-4)
    values = [losses.grl_lambda(p / 20) for p in range(21)]
    assert all(a < b for a, b in zip(values, values[1:]))


def test_instance_noise_std_and_annealing():
    torch.manual_seed(0)
    x = torch.zeros(16, 3, 64, 64)
    assert losses.instance_noise(x, 0.2, 0, 100).std().item() == pytest.approx(0.2, rel=0.02)
    assert losses.instance_noise(x, 0.2, 50, 100).std().item() == pytest.approx(0.1, rel=0.02)
    assert losses.instance_noise(x, 0.2, 100, 100) is x
    assert losses.instance_noise(x, 0.2, 150, 100) is x
    assert losses.instance_noise(x, 0.0, 0, 100) is x


# --- PatchNCE (CUT) -----------------------------------------------------------------------------


def unit_features(n: int, c: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    x = torch.randn(n, c, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return x / x.norm(dim=1, keepdim=True)


def patch_nce_by_loop(query, key, num_images, tau):
    """CUT eq. 2 patch by patch: -log softmax of [q.k+, q.k- over the other patches of the same image, the patch's
    own key masked with the official -10] / tau, at the positive; averaged over every patch of every image."""
    per_image = query.shape[0] // num_images
    terms = []
    for image in range(num_images):
        rows = range(image * per_image, (image + 1) * per_image)
        for i in rows:
            logits = [query[i] @ key[i]] + [query[i] @ key[j] if j != i else torch.tensor(-10.0, dtype=query.dtype)
                                           for j in rows]
            terms.append(-torch.log_softmax(torch.stack(logits) / tau, 0)[0])
    return torch.stack(terms).mean()


def test_patch_nce_equals_a_loop_over_patches():
    query, key = unit_features(3 * 5, 8, seed=0), unit_features(3 * 5, 8, seed=1)
    for tau in (0.07, 1.0):
        expected = patch_nce_by_loop(query, key, 3, tau)
        assert torch.allclose(losses.patch_nce_loss(query, key, 3, tau), expected, rtol=1e-12, atol=0)
    # negatives come from the same image only: the loss is the mean of the images' own losses
    per_image = [losses.patch_nce_loss(query[i:i + 5], key[i:i + 5], 1) for i in (0, 5, 10)]
    assert torch.allclose(losses.patch_nce_loss(query, key, 3), torch.stack(per_image).mean(), rtol=1e-12, atol=0)


def test_patch_nce_is_low_when_each_query_matches_its_own_key():
    key = torch.eye(4, dtype=torch.float64)  # 4 orthogonal patches: logits 1 / tau, three 0, the masked -10 / tau
    tau = 0.07
    expected = math.log1p(3 * math.exp(-1 / tau) + math.exp(-11 / tau))
    assert losses.patch_nce_loss(key, key, 1, tau).item() == pytest.approx(expected, rel=1e-12)
    assert losses.patch_nce_loss(key.flip(0), key, 1).item() > 10  # every query matches another patch's key


def test_patch_nce_trains_queries_only_and_is_float32_for_half_inputs():
    query = unit_features(2 * 4, 6, seed=3, dtype=torch.float32).requires_grad_(True)
    key = unit_features(2 * 4, 6, seed=4, dtype=torch.float32).requires_grad_(True)
    losses.patch_nce_loss(query, key, 2).backward()
    assert query.grad.abs().sum() > 0 and key.grad is None
    assert losses.patch_nce_loss(query.bfloat16(), key.bfloat16(), 2).dtype == torch.float32
