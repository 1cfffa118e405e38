"""`translate serve EXPORT [EXPORT ...]`: the studio page and its HTTP API from one process, offline.

Binds 127.0.0.1 unless --host says otherwise: the API runs models for whoever can reach it, so it also answers
only to the Host names it is bound to (plus --allowed-host) and refuses POSTs from other web sites. On SIGINT or SIGTERM
uvicorn stops accepting connections, lets the requests in flight finish (up to the timeout), then the workers stop.
FastAPI and uvicorn are imported only here, in run(), so the other commands work without the serve extra.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from translate.inference import PRECISIONS

INSTALL_HINT = "the studio needs the serve extra: pip install 'i2i-translate[serve]'"


def add_arguments(parser) -> None:
    parser.add_argument("exports", nargs="+", type=Path, help="export folders of `translate train` (each G_* net "
                        "becomes a model/direction on the page)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 opens it to the network "
                        "(then name the server's network names with --allowed-host)")
    parser.add_argument("--port", type=int, default=7860, help="TCP port to listen on")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="another name the server may be reached by, as in the Host header (repeatable; '*' "
                        "allows any); it always answers to localhost, 127.0.0.1, [::1] and --host")
    parser.add_argument("--device", default="auto", help="auto (the GPU if there is one), cpu, cuda, cuda:1 ...")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="bf16/fp16 run under autocast")
    parser.add_argument("--tile", type=int, default=512, help="images larger than this go through overlapping "
                        "tiles, as `translate convert --tile`; 0 turns tiling off")
    parser.add_argument("--overlap", type=int, default=32, help="overlap between tiles, as convert's")
    parser.add_argument("--max-upload-mb", type=float, default=20, help="largest accepted file, MiB (else 413)")
    parser.add_argument("--max-megapixels", type=float, default=40, help="largest accepted image by its header, "
                        "before decoding (else 413)")
    parser.add_argument("--max-side", type=int, default=8192, help="longest accepted side, pixels, by the header "
                        "(else 413)")
    parser.add_argument("--max-aspect", type=float, default=32, help="largest accepted ratio of the longer to the "
                        "shorter side (else 422): a thin image costs as many forwards as a tall stack of tiles")
    parser.add_argument("--queue-size", type=int, default=16, help="requests for images up to --tile waiting per "
                        "export before 503")
    parser.add_argument("--large-queue-size", type=int, default=2, help="requests for larger (tiled) images "
                        "waiting per export before 503; they run in a process of their own")
    parser.add_argument("--max-batch", type=int, default=8, help="same-size requests run in one forward pass")
    parser.add_argument("--size", choices=("train", "keep"), default="train", help="train: resize each upload "
                        "as the model's training images were, as `translate convert` does; keep: its own size")
    parser.add_argument("--before", type=Path, metavar="EXPORT", help="an export every upload goes through first "
                        "(e.g. a sketch normaliser in front of a sketch -> photo model), as `convert --before`")
    parser.add_argument("--timeout", type=float, default=60, help="seconds a request may wait and run (else 504); "
                        "work past it is stopped by replacing the worker process")


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {requested}: no CUDA device is available here")
    return torch.device(requested)


def run(args) -> int:
    try:
        import uvicorn

        from translate.serve.app import Limits, create_app
    except ImportError as error:
        print(f"translate serve: error: {INSTALL_HINT} ({error})", file=sys.stderr)
        return 2
    from translate.serve.guard import allowed_hosts
    from translate.serve.worker import load_workers

    workers = load_workers(args.exports, pick_device(args.device), precision=args.precision,
                           tile=args.tile or None, overlap=args.overlap, queue_size=args.queue_size,
                           large_queue_size=args.large_queue_size, max_batch=args.max_batch, size=args.size,
                           before=args.before)
    limits = Limits(int(args.max_upload_mb * 2**20), int(args.max_megapixels * 1e6), args.max_side, args.max_aspect,
                    args.timeout)
    hosts = allowed_hosts(args.host, args.allowed_host)
    config = uvicorn.Config(create_app(workers, limits, hosts), host=args.host, port=args.port,
                            timeout_graceful_shutdown=int(args.timeout) + 5)
    print(f"studio: http://{args.host}:{args.port}/ ({', '.join(workers)}); answers to Host "
          f"{', '.join(sorted(hosts)) if hosts else 'any'}", flush=True)
    for name, worker in workers.items():
        if worker.scale is not None:
            print(f"{name}: uploads are resized to the model's training scale ({worker.scale}); --size keep "
                  "translates them at their own size", flush=True)
    uvicorn.Server(config).run()
    return 0
