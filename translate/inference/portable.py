"""`translate export MODEL --format onnx|torchscript`: a generator for runtimes without this package.

The exported graph takes (N, C, H, W) float in [-1, 1] with H and W any multiples of size_multiple (batch, height
and width are dynamic) and returns the same range; `<file>.json` beside it records channels, multiple and value
range. It is deterministic: dropout is off, and a train-mode model keeps per-image statistics (see
translate/inference/translator.py). ONNX uses torch's TorchScript-based exporter (needs onnx, not onnxscript). After
writing, the file is run at a size other than the traced one and compared with the eager model (ONNX: with
onnxruntime when installed). TorchScript is deprecated by PyTorch (torch.jit warns) but still loads everywhere.
"""

from __future__ import annotations

import importlib.util
import json
import math
import warnings
from pathlib import Path

import torch
from torch import nn

from translate.inference import MODES, prepare_for_inference
from translate.inference.model import Model, ModelError, add_model_arguments, load_model_from_args
from translate.utils import atomic_path, write_text_atomic

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
TOLERANCE = 2e-3  # max abs difference to eager, in [-1, 1] units (an 8-bit level is 0.0078)


def add_arguments(parser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--format", choices=FORMATS, required=True, help="onnx or torchscript")
    parser.add_argument("--output", type=Path, help="file to write; default: <net>.onnx / <net>.pt beside MODEL's "
                        "weights")
    parser.add_argument("--mode", choices=MODES, help="default: the model's own inference mode")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset")


def run(args) -> int:
    """0 exported and checked; 1 exported but differs from eager by more than TOLERANCE; 2 nothing written."""
    if args.format == "onnx" and importlib.util.find_spec("onnx") is None:
        raise ModelError("ONNX export needs the onnx package (pip install onnx; onnxruntime for the check)")
    model = load_model_from_args(args)
    net = prepare_for_inference(model.net, args.mode or model.inference_mode).eval()  # eval: dropout off
    output = args.output or default_output(args.model, model, args.format)
    side = model.size_multiple * math.ceil(64 / model.size_multiple)
    sample = torch.rand(1, model.in_channels, side, side) * 2 - 1
    output.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "onnx":
        export_onnx(net, sample, output, args.opset)
    else:
        export_torchscript(net, sample, output)
    write_sidecar(output, model, args.format)
    diff = check_parity(output, args.format, net, model)
    if diff is None:
        print(f"exported {output} (onnxruntime is not installed: parity not checked)")
        return 0
    print(f"exported {output}; max abs difference to eager at another size: {diff:.2e}")
    return 0 if diff <= TOLERANCE else 1


def default_output(model_path: Path, model: Model, fmt: str) -> Path:
    folder = model_path if model_path.is_dir() else model_path.parent
    return folder / f"{model.name}{FORMATS[fmt]}"


def export_onnx(net: nn.Module, sample: torch.Tensor, path: Path, opset: int = 17) -> None:
    dims = {0: "batch", 2: "height", 3: "width"}
    # the legacy exporter and the tracer are chatty about things that do not apply
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (sample,), str(tmp), dynamo=False, input_names=["image"], output_names=["output"],
                          dynamic_axes={"image": dims, "output": dims}, opset_version=opset)


def export_torchscript(net: nn.Module, sample: torch.Tensor, path: Path) -> None:
    """Traced: the generators have no data-dependent control flow, so the trace runs at any input size."""
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(net, sample, check_trace=False), str(tmp))  # checked after saving instead


def write_sidecar(path: Path, model: Model, fmt: str) -> None:
    info = {"format": fmt, "input": "image (N, C, H, W) float", "arch": model.arch, "net": model.name,
            "in_channels": model.in_channels, "out_channels": model.out_channels,
            "size_multiple": model.size_multiple, "value_range": [-1.0, 1.0], "sha256_of_weights": model.sha256}
    write_text_atomic(path.with_name(path.name + ".json"), json.dumps(info, indent=2))


def check_parity(path: Path, fmt: str, net: nn.Module, model: Model) -> float | None:
    """Max abs difference between the exported file and `net` on a batch of 2 at a size the trace never saw."""
    m = model.size_multiple
    side = m * math.ceil(64 / m)
    x = torch.rand(2, model.in_channels, side + m, side + 2 * m) * 2 - 1
    with torch.inference_mode():
        expected = net(x)
    if fmt == "torchscript":
        with warnings.catch_warnings(), torch.inference_mode(), torch.jit.optimized_execution(False):
            warnings.simplefilter("ignore")  # torch.jit's deprecation notice; no profiling runs for one call
            got = torch.jit.load(str(path))(x)
    else:
        try:
            import onnxruntime
        except ImportError:
            return None
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
    return (got - expected).abs().max().item()
