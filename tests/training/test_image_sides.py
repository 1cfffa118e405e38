"""The image-side check reads what each network declares (size_multiple, min_side), so a network that declares
nothing is never refused, and one that declares only a minimum (a discriminator) is held to it."""

import pytest
from torch import nn

from translate import config
from translate.training.image_sides import check_image_sides


def declaring(**sizes) -> nn.Module:
    net = nn.Identity()
    for name, value in sizes.items():
        setattr(net, name, value)
    return net


def pix2pix(*overrides: str) -> config.Config:
    return config.load(None, ["model.name=pix2pix", "model.generator=resnet_6blocks", "data.load_size=64",
                              *overrides])


def test_a_net_that_declares_nothing_takes_any_side():
    check_image_sides(pix2pix("data.crop_size=31"), {"F": declaring()})


def test_a_minimum_alone_is_named_without_a_multiple():
    with pytest.raises(config.ConfigError, match=r"^data\.crop_size=16 does not fit the network D: its input sides "
                                                 r"must be at least 24; e\.g\. data\.crop_size=24$"):
        check_image_sides(pix2pix("data.crop_size=16"), {"D": declaring(min_side=24)})


def test_resize_trains_at_load_size_and_the_images_own_sizes_are_not_checked():
    generator = declaring(size_multiple=4, min_side=8)
    with pytest.raises(config.ConfigError, match=r"data\.load_size=30 .* G \(model\.generator=resnet_6blocks\)"):
        check_image_sides(pix2pix("data.preprocess=resize", "data.load_size=30"), {"G": generator})
    for preprocess in ("none", "scale_width"):  # sides come from the images (none rounds them to 4)
        check_image_sides(pix2pix(f"data.preprocess={preprocess}", "data.crop_size=31"), {"G": generator})
