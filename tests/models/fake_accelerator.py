"""The part of Accelerator a model's train_step uses, so a step can be called directly on the CPU."""

import contextlib

import torch


class FakeAccelerator:
    device = torch.device("cpu")

    def backward(self, loss):
        loss.backward()

    def autocast(self):
        return contextlib.nullcontext()
