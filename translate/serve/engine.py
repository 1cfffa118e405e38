"""The child process that runs one lane of a Worker: an export's generator nets behind a pipe.

A thread cannot be stopped once a forward pass has started; a process can. So each lane's nets live in a process
started with 'spawn' (a fresh interpreter: safe with CUDA and with the server's threads), and the server kills and
replaces it when its work outlives every deadline waiting on it.

The protocol over one duplex Pipe: once the nets are loaded the child sends ("ready", None), or ("error", message)
and exits; then for each (net, images, hints) received (a list of same-size HxWxC uint8 arrays, and None or one
HxWx4 colour hint map or None per image, fitted to its image) it answers ("ok", outputs) or ("error", message), and
it exits when the pipe closes. SIGINT and SIGTERM are ignored: Ctrl-C reaches the whole process group, and the
server, which finishes the requests in flight before it stops, decides when a child ends.
"""

from __future__ import annotations

import math
import signal


def one_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def load_translators(path: str, device: str, precision: str, tile: int | None, overlap: int,
                     before: str | None = None, size: str = "train") -> dict:
    """net name -> Translator for every generator of the export, as `translate convert` builds them; tiles per
    forward are 1 on the CPU and 8 on a GPU (convert's default --batch-size). torch.compile stays off: a first
    compile would stall every waiting request for seconds. With `before` (an export), each is the Chain of that
    export's generator and the net, as `translate convert --before`, the net's inputs at its `size`."""
    import torch

    from translate.export import read_export_config
    from translate.inference.chain import Chain
    from translate.inference.model import load_model
    from translate.inference.scale import resolve_size

    description = read_export_config(path)
    nets = [name for name, spec in description["nets"].items() if spec["role"] == "generator"]
    torch_device = torch.device(device)

    def translator(model):
        from translate.inference import Translator, prepare_for_inference

        module = prepare_for_inference(model.net, model.inference_mode)
        warm_up(module.to(torch_device), model.in_channels + model.hint_channels, model.size_multiple)
        return Translator(module, model.size_multiple, torch_device, precision, tile, overlap,
                          1 if torch_device.type == "cpu" else 8, compile="off", hint_channels=model.hint_channels)

    first = translator(load_model(before)) if before else None
    translators = {}
    for net in nets:
        model = load_model(path, net)
        translators[net] = translator(model)
        if first is not None:
            translators[net] = Chain(first, translators[net], model.in_channels, resolve_size(size, description))
    return translators


def warm_up(net, channels: int, size_multiple: int) -> None:
    """One small forward before the lane says ready: a process's first forward is several times slower (lazy
    kernel setup), and a replacement's first request should not pay for it. The net is called directly, so the
    Translator's own dropout stream stays where convert's starts."""
    import torch

    side = math.ceil(max(64, getattr(net, "min_side", 1)) / size_multiple) * size_multiple
    device = next(net.parameters()).device
    with torch.inference_mode():
        net(torch.zeros(1, channels, side, side, device=device))


def main(conn, path: str, device: str, precision: str, tile: int | None, overlap: int, before: str | None,
         size: str, threads: int | None) -> None:
    """The child's whole life: load, say ready, translate what arrives until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        import torch

        if threads:
            torch.set_num_threads(threads)
        translators = load_translators(path, device, precision, tile, overlap, before, size)
    except Exception as error:
        conn.send(("error", one_line(error)))
        return
    conn.send(("ready", None))
    while True:
        try:
            net, images, hints = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer = ("ok", translators[net](images, hints))
        except Exception as error:  # e.g. out of memory: these requests fail, the process goes on
            answer = ("error", one_line(error))
        try:
            conn.send(answer)
        except OSError:  # the server went away meanwhile
            return
