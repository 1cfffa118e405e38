"""Losses for pix2pix, CycleGAN, CUT, DTN and DANN.

Adversarial losses take discriminator LOGITS and use BCE-with-logits, never sigmoid + BCE, so they are safe under
mixed precision. Every loss is computed in float32 (or wider): half-precision logits and images are upcast first,
and label targets such as 0.9 are never rounded to bfloat16. Loss weights (lambda) are the caller's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

GAN_MODES = ("vanilla", "lsgan", "hinge", "wgangp")
CONSTANCY_DISTANCES = ("mse", "l1", "cosine")


def _check_mode(mode: str) -> None:
    if mode not in GAN_MODES:
        raise ValueError(f"unknown gan mode {mode!r}; valid modes: {', '.join(GAN_MODES)}")


def _wide(x: torch.Tensor) -> torch.Tensor:
    """x in at least float32: losses (and their small targets) should not be computed in 16 bits."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both tensors in one dtype of at least float32 (e.g. a bfloat16 output against a float32 target)."""
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    return a.to(dtype), b.to(dtype)


def _target(logits: torch.Tensor, label) -> torch.Tensor:
    """A label (number or tensor broadcastable to the logits) as a full target tensor shaped like the logits."""
    return torch.as_tensor(label, dtype=logits.dtype, device=logits.device).expand_as(logits)


def _fit(mode: str, logits: torch.Tensor, label) -> torch.Tensor:
    """The reference GANLoss for one side: BCE-with-logits (vanilla) or MSE (lsgan) against the label, mean over
    every patch of every sample."""
    target = _target(logits, label)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, target)
    return F.mse_loss(logits, target)


# --- adversarial -------------------------------------------------------------------------------------------------

def discriminator_loss(mode: str, real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       real_label=1.0, fake_label=0.0) -> torch.Tensor:
    """D's loss on one real and one fake batch of logits.

    vanilla: the GAN objective (Goodfellow et al. 2014, eq. 1; pix2pix eq. 1) as two BCE terms; lsgan: LSGAN eq. 2
    (Mao et al. 2017) with a = 0, b = 1, which CycleGAN uses (sec. 4). Both are halved as the reference does
    (loss_D = (loss_D_fake + loss_D_real) * 0.5) so D learns at half G's rate. Labels may be tensors broadcastable
    to the logits (label smoothing and flipping, see `smoothed_labels`); they only mean something for these two.
    hinge: Lim & Ye 2017 / Miyato et al. 2018 eq. 16. wgangp: the WGAN critic loss E[D(fake)] - E[D(real)]
    (Gulrajani et al. 2017, eq. 3 without its penalty term: add `gradient_penalty`). These two are not halved.
    """
    _check_mode(mode)
    real_logits, fake_logits = _wide(real_logits), _wide(fake_logits)
    if mode in ("vanilla", "lsgan"):
        return 0.5 * (_fit(mode, real_logits, real_label) + _fit(mode, fake_logits, fake_label))
    if mode == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    return fake_logits.mean() - real_logits.mean()


def generator_loss(mode: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """G's adversarial loss. vanilla: the non-saturating -log D(G(x)) (Goodfellow et al. 2014, sec. 3), i.e.
    BCE against 1; lsgan: (D(G(x)) - 1)^2 (LSGAN eq. 2, c = 1); hinge and wgangp: -E[D(G(x))]."""
    _check_mode(mode)
    fake_logits = _wide(fake_logits)
    if mode in ("vanilla", "lsgan"):
        return _fit(mode, fake_logits, 1.0)
    return -fake_logits.mean()


def smoothed_labels(logits: torch.Tensor, real_label: float = 1.0, flip_prob: float = 0.0,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets for `discriminator_loss` with two stabilisers: one-sided label smoothing (Salimans et al. 2016,
    sec. 3.4: real targets become e.g. 0.9, fake targets stay 0) and label flipping (each sample's real and fake
    targets swapped with probability flip_prob). One draw per sample, broadcast over its patches.

    The draws come from torch's global CPU RNG (which Accelerate checkpoints), or from `generator` when given.
    Returns (real_targets, fake_targets), float32 and shaped like the logits.
    """
    shape = (logits.shape[0],) + (1,) * (logits.dim() - 1)
    dtype = torch.promote_types(logits.dtype, torch.float32)
    real = torch.full(shape, float(real_label), dtype=dtype, device=logits.device)
    fake = torch.zeros_like(real)
    if flip_prob > 0:
        rng_device = generator.device if generator is not None else torch.device("cpu")
        flip = (torch.rand(shape, generator=generator, device=rng_device) < flip_prob).to(logits.device)
        real, fake = torch.where(flip, fake, real), torch.where(flip, real, fake)
    return real.expand_as(logits), fake.expand_as(logits)


def gradient_penalty(discriminator, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
                     constant: float = 1.0) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017, eq. 3): weight * E[(||grad_x D(x_hat)||_2 - constant)^2] at x_hat, a random
    per-sample interpolation between real and fake. create_graph=True so the penalty trains D.

    For a conditional D, pass the already concatenated (condition, image) tensors as real and fake. As in the
    reference's cal_gradient_penalty, 1e-16 is added to the gradient before the norm (its gradient is undefined
    at 0).
    """
    real, fake = real.detach(), fake.detach()
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    logits = discriminator(mixed)
    (grad,) = torch.autograd.grad(_wide(logits).sum(), mixed, create_graph=True)
    norm = (_wide(grad).flatten(1) + 1e-16).norm(2, dim=1)
    return weight * ((norm - constant) ** 2).mean()


def r1_penalty(real_logits: torch.Tensor, real_inputs: torch.Tensor, gamma: float) -> torch.Tensor:
    """R1 (Mescheder et al. 2018, eq. 9): gamma / 2 * E[||grad_x D(x)||^2] on real data only.

    The caller sets real_inputs.requires_grad_(True) before the forward that produced real_logits.
    """
    (grad,) = torch.autograd.grad(_wide(real_logits).sum(), real_inputs, create_graph=True)
    return 0.5 * gamma * _wide(grad).flatten(1).pow(2).sum(1).mean()


# --- reconstruction ----------------------------------------------------------------------------------------------

def l1_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """pix2pix eq. 3: E[||y - G(x)||_1] as a mean over pixels (the lambda = 100 weight is the caller's)."""
    return F.l1_loss(*_pair(prediction, target))


PERCEPTUAL_STAGE_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)  # pix2pixHD's VGGLoss weights, finest stage first


def perceptual_loss(fake_features: list[torch.Tensor], real_features: list[torch.Tensor],
                    weights: tuple[float, ...] = PERCEPTUAL_STAGE_WEIGHTS) -> torch.Tensor:
    """The perceptual (feature reconstruction) loss of pix2pixHD (Wang et al. 2018, sec. 3.2, "we also include the
    perceptual loss", lambda 10; after Johnson et al. 2016, eq. 2), as its official VGGLoss computes it:
    sum_i w_i * mean |F_i(G(x)) - F_i(y)| over feature stages i, L1 distance, weights 1/32 ... 1 from the finest
    stage to the coarsest, the real image's features held fixed. F is the caller's fixed network (pix2pixHD: VGG-19;
    here a training EfficientNet, backbones.FrozenFeatures)."""
    if len(fake_features) != len(weights) or len(real_features) != len(weights):
        raise ValueError(f"perceptual loss: {len(weights)} stage weights for {len(fake_features)} fake and "
                         f"{len(real_features)} real feature stages")
    total = 0.0
    for weight, fake, real in zip(weights, fake_features, real_features):
        fake, real = _pair(fake, real.detach())
        total = total + weight * (fake - real).abs().mean()
    return total


def cycle_loss(reconstructed: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """CycleGAN eq. 2, one direction: E[||F(G(x)) - x||_1] (lambda = 10 is the caller's)."""
    return F.l1_loss(*_pair(reconstructed, real))


def identity_loss(same: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """CycleGAN sec. 5.2 identity mapping loss, one direction: E[||G(y) - y||_1] (the caller weights it by
    0.5 * lambda); the same idea as DTN's L_TID (Taigman et al. 2017), here with d = L1."""
    return F.l1_loss(*_pair(same, real))


# --- CUT ---------------------------------------------------------------------------------------------------------

def patch_nce_loss(query: torch.Tensor, key: torch.Tensor, num_images: int, tau: float = 0.07) -> torch.Tensor:
    """PatchNCE (Park et al. 2020, CUT): eq. 2, the cross-entropy of picking the positive among 1 + negatives,
    -log(exp(v.v+ / tau) / (exp(v.v+ / tau) + sum_n exp(v.v-_n / tau))), for every sampled patch of one layer of
    eq. 3; averaged over the patches (the paper sums; the official code averages, and so does this).

    query, key: (N * P, C) L2-normalised features of N images, P patches each, grouped per image (the P rows of
    image 0 first); row i of key is the positive of row i of query. Keys are constants (detached, as in the official
    PatchNCELoss). The negatives of a patch are the other P - 1 patches of the same image
    (nce_includes_all_negatives_from_minibatch=False); the query's own key, which is the positive, sits on the
    diagonal of the negatives' matrix and is masked there with the official -10 (before dividing by tau).
    """
    query, key = _pair(query, key.detach())
    positive = (query * key).sum(1, keepdim=True)  # (N * P, 1)
    query, key = query.reshape(num_images, -1, query.shape[1]), key.reshape(num_images, -1, key.shape[1])
    negatives = torch.bmm(query, key.transpose(1, 2))  # (N, P, P): patch i of an image against every patch j
    diagonal = torch.eye(negatives.shape[1], dtype=torch.bool, device=negatives.device)
    negatives = negatives.masked_fill(diagonal, -10.0).flatten(0, 1)
    logits = torch.cat([positive, negatives], 1) / tau
    return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))


def cross_domain_nce(query: torch.Tensor, gallery: torch.Tensor, tau: float = 0.07,
                     instance: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE between two domains (Oord et al. 2018, eq. 4; the symmetric form of CLIP, Radford et al.
    2021): row i of `query` (a sketch) and row i of `gallery` (its photo) are the positive pair, every other row of
    the other domain in the batch a negative. With S_ij = cos(q_i, g_j) / tau the loss is
    (CE(S, I) + CE(S^T, I)) / 2: each sketch must pick its photo among the batch's photos, and each photo its sketch.
    Inputs: (N, D) embeddings, normalised here; both sides receive gradients.

    `instance` (N,) names the pair each row was drawn from: rows of the same pair are no negatives of each other
    (their S_ij leave the softmax). A batch larger than the share of the training set left in an epoch holds some
    pairs twice (a few known pairs, or a batch that straddles two epochs), and without the mask the loss would push
    a sketch away from another crop of its own photo."""
    query, gallery = F.normalize(query.float(), dim=1), F.normalize(gallery.float(), dim=1)
    logits = query @ gallery.T / tau
    labels = torch.arange(logits.shape[0], device=logits.device)
    if instance is not None:
        same = (instance[:, None] == instance[None, :]) & (labels[:, None] != labels[None, :])
        logits = logits.masked_fill(same, float("-inf"))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


# --- DTN ---------------------------------------------------------------------------------------------------------

def _safe_pow(x: torch.Tensor, exponent: float) -> torch.Tensor:
    """x ** exponent for x >= 0 with value 0 and gradient 0 at x == 0 (sqrt's gradient there is infinite)."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, torch.ones_like(x)) ** exponent, torch.zeros_like(x))


def tv_loss(x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Total variation L_TV of DTN (Taigman et al. 2017, eq. 6):
    sum_ij ((z_i,j+1 - z_ij)^2 + (z_i+1,j - z_ij)^2)^(B/2) with the paper's B = 1, i.e. the isotropic TV, not the
    anisotropic |dx| + |dy|. beta = 2 gives the squared (smooth) form. Per channel, and averaged over the
    (H-1) x (W-1) positions, channels and samples instead of summed, so its weight does not depend on image size."""
    x = _wide(x)
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return _safe_pow(dx.square() + dy.square(), beta / 2).mean()


def f_constancy_loss(f_x: torch.Tensor, f_gx: torch.Tensor, distance: str = "mse") -> torch.Tensor:
    """DTN's f-constancy L_CONST (Taigman et al. 2017, eq. 4): d(f(x), f(G(x))) averaged over source samples x.
    The paper leaves d a distance function: MSE here by default; l1 and cosine (1 - cos of the flattened features)
    are options. f is fixed, so f_x is
    the target and gets no gradient."""
    f_gx, f_x = _pair(f_gx, f_x.detach())
    if distance == "mse":
        return F.mse_loss(f_gx, f_x)
    if distance == "l1":
        return F.l1_loss(f_gx, f_x)
    if distance == "cosine":
        return (1 - F.cosine_similarity(f_gx.flatten(1), f_x.flatten(1), dim=1)).mean()
    raise ValueError(f"unknown distance {distance!r}; valid: {', '.join(CONSTANCY_DISTANCES)}")


# --- DANN and stabilisers ----------------------------------------------------------------------------------------

def grl_lambda(progress: float, gamma: float = 10.0) -> float:
    """DANN's gradient reversal weight (Ganin et al. 2016, sec. 5.2.2): 2 / (1 + exp(-gamma p)) - 1, rising from 0
    at p = 0 (training progress, 0..1) towards 1, so early noisy domain gradients are damped."""
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


def instance_noise(x: torch.Tensor, sigma0: float, step: int, anneal_steps: int) -> torch.Tensor:
    """Instance noise on D's inputs (Sonderby et al. 2017; Arjovsky & Bottou 2017): x + N(0, sigma^2) with sigma
    annealed linearly from sigma0 at step 0 to 0 at anneal_steps. x itself is returned when sigma is 0."""
    if sigma0 <= 0 or step >= anneal_steps:
        return x
    sigma = sigma0 * (1.0 - step / anneal_steps)
    return x + sigma * torch.randn_like(x)
