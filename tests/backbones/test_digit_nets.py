"""The digit encoders (DANN's LeNet, DTN's f) and DTN's generator: shapes, value ranges, gradients, bad sizes."""

import pytest
import torch

from translate.backbones import DTNGenerator, build_feature_encoder
from translate.backbones.digit_nets import DTNEncoder


@pytest.mark.parametrize("arch", ["lenet", "dtn"])
@pytest.mark.parametrize("channels", [1, 3])
def test_embedding_shape_and_gradient(arch, channels):
    torch.manual_seed(0)
    f = build_feature_encoder(arch, in_channels=channels, embedding_dim=16, image_size=32)
    x = torch.randn(4, channels, 32, 32, requires_grad=True)
    z = f(x)
    assert z.shape == (4, 16) and f.embedding_dim == 16 and f.image_size == 32
    z.square().sum().backward()
    assert x.grad.abs().sum() > 0 and all(p.grad is not None for p in f.parameters())


def test_dtn_f_is_the_papers_four_convolutions_with_a_bounded_code():
    f = DTNEncoder(3, 128)
    convs = [m for m in f.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 128]
    assert [c.kernel_size for c in convs] == [(3, 3)] * 3 + [(4, 4)]
    z = f(torch.randn(8, 3, 32, 32) * 50)
    assert z.abs().max() <= 1  # tanh on the code


def test_dtn_f_refuses_other_sizes():
    with pytest.raises(ValueError, match="32 px"):
        DTNEncoder(3, 128, image_size=28)


def test_dtn_generator_draws_grey_images_from_rgb():
    g = DTNGenerator(3, 1, {"arch": "dtn", "kwargs": {"in_channels": 3, "embedding_dim": 16}}, ngf=8).eval()
    assert g(torch.zeros(2, 3, 40, 24)).shape == (2, 1, 40, 24)
