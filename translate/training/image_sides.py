"""The side of the training images against what the networks can take, checked before a run folder exists.

A generator says what it takes: `size_multiple` (its stride-2 levels: 4 for the ResNets, 2**num_downs for a U-Net)
and, where a multiple is not enough, `min_side` (a ResNet's residual blocks reflect-pad its 1/4-scale features by
1 px, so those need 2 px). A side that breaks either fails only deep inside the first step ("Sizes of tensors must
match", "Expected more than 1 value per channel"), after the run folder was made; here it is one line naming the key.
"""

from __future__ import annotations

from translate.config import Config, ConfigError


def training_side(cfg: Config) -> tuple[str, int] | None:
    """The key and value that set the side of every training image, or None where the images' own sizes do
    (data.preprocess none, scale_width)."""
    if cfg.data.preprocess.endswith("crop"):
        return "data.crop_size", cfg.data.crop_size
    if cfg.data.preprocess == "resize":
        return "data.load_size", cfg.data.load_size
    return None


def check_image_sides(cfg: Config, nets: dict) -> None:
    """ConfigError naming the key, the network and the nearest side that fits, if a net cannot take the images."""
    found = training_side(cfg)
    if found is None:
        return
    key, side = found
    for name, net in nets.items():
        multiple = getattr(net, "size_multiple", 1)
        least = max(multiple, getattr(net, "min_side", 1))
        if side % multiple == 0 and side >= least:
            continue
        fits = max(least, round(side / multiple) * multiple)
        generator = hasattr(net, "size_multiple") and getattr(cfg.model, "generator", None)
        arch = f" (model.generator={cfg.model.generator})" if generator else ""
        needs = [f"multiples of {multiple}"] * (multiple > 1) + [f"at least {least}"] * (least > multiple)
        raise ConfigError(f"{key}={side} does not fit the network {name}{arch}: its input sides must be "
                          f"{', '.join(needs)}; e.g. {key}={fits}")
