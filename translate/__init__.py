"""Image-to-image translation: pix2pix, CycleGAN, DTN and DANN on shared backbones, trained with Accelerate."""

__version__ = "0.1.0"
