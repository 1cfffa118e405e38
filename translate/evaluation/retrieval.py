"""`translate eval retrieval (--model EXPORT | --encoder NAME) --query DIR --gallery DIR [...]`: cross-domain
retrieval, street photo -> shop image, sketch -> product photo.

Queries and gallery are embedded by the export's embedding network (a DANN or classifier encoder, a crossmatch
embedding), or with --encoder by an off-the-shelf ImageNet encoder from the packaged weights (the baseline), and
every gallery image is ranked by cosine similarity to each query. What counts as a hit: the query's class
(labeled folders, --match class), or its one true match (--match name, --pairs: instance level); see
translate.evaluation.retrieval_sets. --translate-query maps queries into the gallery's domain first (a DTN or
pix2pix export: translate, then match). Side-by-side A|B files can serve as queries and gallery directly
(--query-half left --gallery-half right).

Reports Recall@1/5/10 (share of queries with a hit in the top K), mAP (mean over queries of average precision over
the whole ranking; at instance level 1 / rank of the true match), the CMC curve (Recall@k, k = 1..20) and the time
taken (embedding included). One JSON object on stdout; --html writes a page of each query and its top answers.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from translate.backbones.encoders import ENCODERS
from translate.evaluation import report
from translate.evaluation.classify import add_common_arguments, emit, translator
from translate.evaluation.loading import HALVES, iter_batches
from translate.evaluation.retrieval_page import THUMB, write_page
from translate.evaluation.retrieval_sets import MATCHES, retrieval_set
from translate.export import load_encoder
from translate.inference import PRECISIONS, emulated_precision

log = logging.getLogger(__name__)
RECALL_AT = (1, 5, 10)
CMC_DEPTH = 20
GREY = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's "L": what a 1-channel encoder was trained on


def add_arguments(parser) -> None:
    embedder = parser.add_mutually_exclusive_group(required=True)
    embedder.add_argument("--model", type=Path, help="export folder whose encoder or embedding embeds the images")
    embedder.add_argument("--encoder", choices=sorted(ENCODERS), help="an off-the-shelf ImageNet encoder (packaged "
                          "weights, pooled features) instead of a trained export: the baseline")
    parser.add_argument("--image-size", type=int, default=128, help="--encoder: the input side (default 128)")
    parser.add_argument("--query", required=True, type=Path, help="folder of queries")
    parser.add_argument("--gallery", required=True, type=Path, help="folder searched")
    parser.add_argument("--match", choices=MATCHES, default="class", help="class: labeled folders DIR/<class>/<img>, "
                        "any image of the query's class is a hit; name: the gallery file of the same name is the "
                        "one hit (default class)")
    parser.add_argument("--pairs", type=Path, help="file of 'QUERY GALLERY' relative paths, one pair per line: the "
                        "one hit of each listed query (instance level)")
    parser.add_argument("--distractors", type=Path, nargs="+", default=[], help="folders of extra gallery images "
                        "that answer no query")
    parser.add_argument("--query-half", choices=HALVES, help="use one half of side-by-side query files")
    parser.add_argument("--gallery-half", choices=HALVES, help="use one half of side-by-side gallery and "
                        "distractor files")
    parser.add_argument("--translate-query", type=Path, help="export of a generator (DTN, pix2pix) mapping the "
                        "queries into the gallery's domain before embedding")
    parser.add_argument("--html", type=Path, help="write a page with each query and its top answers")
    parser.add_argument("--top", type=int, default=5, help="answers per query on the page (default 5)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="bf16/fp16: embed (and translate) "
                        "under autocast; the ranking is computed in fp32")
    add_common_arguments(parser)


def retrieval_metrics(query: torch.Tensor, query_labels: torch.Tensor, gallery: torch.Tensor,
                      gallery_labels: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """Metrics of cosine ranking, and the ranking itself (Q x G gallery indices, best first; ties keep gallery
    order). Queries whose label is absent from the gallery count as misses in Recall@K and CMC and are left
    out of mAP."""
    similarity = F.normalize(query.float(), dim=1) @ F.normalize(gallery.float(), dim=1).T
    ranking = torch.sort(similarity, dim=1, descending=True, stable=True).indices
    relevant = (gallery_labels[ranking] == query_labels[:, None]).float()  # Q x G, in ranked order
    hit_by = relevant.cummax(dim=1).values  # 1 from the first hit on
    depth = min(CMC_DEPTH, relevant.shape[1])
    cmc = hit_by[:, :depth].mean(0)
    count = relevant.sum(1)
    precision = relevant.cumsum(1) / torch.arange(1, relevant.shape[1] + 1, device=relevant.device)
    has_relevant = count > 0
    average_precision = (precision * relevant).sum(1)[has_relevant] / count[has_relevant]
    metrics = {f"recall@{k}": hit_by[:, min(k, relevant.shape[1]) - 1].mean().item() for k in RECALL_AT}
    metrics["map"] = average_precision.mean().item() if has_relevant.any() else 0.0
    metrics["cmc"] = cmc.tolist()
    return metrics, ranking


@torch.no_grad()
def embed(files: list[Path], half: str | None, embedder, spec: dict, args, generator=None,
          skipped: list | None = None) -> tuple[torch.Tensor, list[int], list[torch.Tensor]]:
    """(embeddings, indices of the files that could be read, uint8 thumbnails when a page is wanted): each image
    resized (bicubic, antialiased) to the embedder's input side, in [-1, 1], translated first when a generator is
    given. With --precision bf16/fp16 the networks run under autocast (AMX CPUs, GPUs)."""
    size, index = spec["image_size"], {str(f): i for i, f in enumerate(files)}
    dtype = PRECISIONS[args.precision]
    autocast = torch.autocast(torch.device(args.device).type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)
    embeddings, kept, thumbs = [], [], []
    for paths, images in iter_batches([[f] for f in files], args.batch_size, [half], args.workers,
                                      desc="embedding", progress=not args.no_progress, skipped=skipped):
        x = F.interpolate(images.float() / 127.5 - 1, size=(size, size), mode="bicubic", antialias=True,
                          align_corners=False).clamp(-1, 1).to(args.device)
        with autocast:
            x = x if generator is None else generator(x).float()
        if args.html:  # only the page needs them
            thumbs += list(((F.interpolate(x, size=(THUMB, THUMB), mode="area") + 1) * 127.5).round()
                           .clamp(0, 255).to(torch.uint8).cpu())
        if spec["in_channels"] == 1:
            x = (x * torch.tensor(GREY, device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        with autocast:
            embeddings.append(embedder(x.contiguous(memory_format=torch.channels_last)).float().cpu())
        kept += [index[str(p[0])] for p in paths]
    return torch.cat(embeddings), kept, thumbs


def off_the_shelf(name: str, image_size: int, device) -> tuple[torch.nn.Module, dict]:
    from translate.backbones.digit_nets import TimmEncoder

    return TimmEncoder(name, pretrained=True, image_size=image_size).eval().to(device), {
        "image_size": image_size, "in_channels": 3}


def run(args) -> int:
    args.device = report.resolve_device(args.device)
    if args.model:
        embedder, spec = load_encoder(args.model, device=args.device, with_spec=True)
    else:
        embedder, spec = off_the_shelf(args.encoder, args.image_size, args.device)
    # channels_last: the depthwise convolutions of EfficientNet run 2.4x faster so on this CPU (12.7 -> 5.2 ms an image)
    embedder = embedder.to(memory_format=torch.channels_last)
    generator = translator(args.translate_query, args.device)
    data = retrieval_set(args.query, args.gallery, args.match, args.pairs, tuple(args.distractors))
    start, skipped = time.perf_counter(), []
    query, query_kept, query_thumbs = embed(data.query, args.query_half, embedder, spec, args, generator, skipped)
    gallery, gallery_kept, gallery_thumbs = embed(data.gallery, args.gallery_half, embedder, spec, args,
                                                  None, skipped)
    # what could not be read is left out: drop it from the lists so that index i is the i-th embedding again
    data.query, data.query_labels = [data.query[i] for i in query_kept], [data.query_labels[i] for i in query_kept]
    if len(gallery_kept) < len(data.gallery):
        renumber = {old: new for new, old in enumerate(gallery_kept)} if data.level == "instance" else None
        data.gallery = [data.gallery[i] for i in gallery_kept]
        data.gallery_labels = [data.gallery_labels[i] for i in gallery_kept]
        if renumber is not None:  # instance labels are gallery positions
            data.names = [data.names[i] for i in gallery_kept]
            data.gallery_labels = list(range(len(gallery_kept)))
            data.query_labels = [renumber.get(label, -1) for label in data.query_labels]
    metrics, ranking = retrieval_metrics(query, torch.tensor(data.query_labels), gallery,
                                         torch.tensor(data.gallery_labels))
    seconds = time.perf_counter() - start
    result = {**{k: metrics[k] for k in ("recall@1", "recall@5", "recall@10", "map")}, "cmc": metrics["cmc"],
              "level": data.level, "queries": len(data.query), "gallery": len(data.gallery),
              "seconds": round(seconds, 3), "ms_per_query": round(1000 * seconds / max(len(data.query), 1), 2),
              "model": str(args.model or f"{args.encoder} (ImageNet, off the shelf)"),
              "translate_query": str(args.translate_query) if args.translate_query else None,
              "skipped": skipped, "warnings": warnings(data, args)}
    for warning in result["warnings"]:
        log.warning(warning)
    if args.html:
        write_page(args.html, data, query_thumbs, gallery_thumbs, ranking, result, args.top)
        log.info("wrote %s", args.html)
    emit(result, args.json)
    return 0


def warnings(data, args) -> list[str]:
    slow = [warning] if (warning := emulated_precision(args.precision, args.device)) else []
    return slow + unanswerable_warnings(data)


def unanswerable_warnings(data) -> list[str]:
    """Queries whose label no gallery image has: they can never be answered right, so say so beside the scores,
    and say what retrieval_metrics does with them: misses in Recall@K and CMC, left out of mAP."""
    gallery_labels = set(data.gallery_labels)
    unanswerable = [q for q, label in zip(data.query, data.query_labels) if label not in gallery_labels]
    if not unanswerable:
        return []
    effect = (f"they count as misses in Recall@K and CMC (of all {len(data.query)} queries) and are left out of "
              f"mAP (over the other {len(data.query) - len(unanswerable)})")
    if data.level == "class":
        missing = sorted({data.caption(label) for label in data.query_labels} -
                         {data.caption(label) for label in data.gallery_labels})
        return [f"query classes {', '.join(missing)} have no image in the gallery, so {len(unanswerable)} queries "
                f"can never be answered right: {effect}"]
    names = ", ".join(q.name for q in unanswerable[:5]) + (" ..." if len(unanswerable) > 5 else "")
    return [f"{len(unanswerable)} queries have no match in the gallery ({names}): {effect}"]
