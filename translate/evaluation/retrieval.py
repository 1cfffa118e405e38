"""`translate eval retrieval --model EXPORT --query DIR --gallery DIR [--translate-query DTN_EXPORT] [--html OUT]`:
cross-domain retrieval ("street photo -> shop image"). Both labeled folders are embedded with the export's encoder
and every gallery image is ranked by cosine similarity to each query; a hit is a gallery image of the query's
class. Reports Recall@1/5/10 (share of queries with a hit in the top K), mAP (mean over queries of average
precision over the whole ranking) and the CMC curve (Recall@k for k = 1..20). One JSON object on stdout.
"""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path
from urllib.parse import quote

import torch
import torch.nn.functional as F

from translate.evaluation import report
from translate.evaluation.classify import add_common_arguments, emit, load_folder, translator
from translate.export import load_encoder
from translate.utils import write_text_atomic

log = logging.getLogger(__name__)
RECALL_AT = (1, 5, 10)
CMC_DEPTH = 20


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, type=Path, help="export folder whose encoder embeds the images")
    parser.add_argument("--query", required=True, type=Path, help="labeled folder of queries DIR/<class>/<image>")
    parser.add_argument("--gallery", required=True, type=Path, help="labeled folder searched, DIR/<class>/<image>")
    parser.add_argument("--translate-query", type=Path, help="export of a generator (DTN) mapping the queries into "
                                                             "the gallery's domain before embedding")
    parser.add_argument("--html", type=Path, help="write a page with each query and its top-3 answers")
    add_common_arguments(parser)


def retrieval_metrics(query: torch.Tensor, query_labels: torch.Tensor, gallery: torch.Tensor,
                      gallery_labels: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """Metrics of cosine ranking, and the ranking itself (Q x G gallery indices, best first; ties keep gallery
    order). Queries whose class is absent from the gallery count as misses in Recall@K and CMC and are left
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
def embed(loader, encoder, generator=None, device="cpu") -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    embeddings, labels, paths = [], [], []
    for batch in loader:
        x = batch["image"].to(device)
        if generator is not None:
            x = generator(x)
        embeddings.append(encoder(x).float().cpu())
        labels.append(batch["label"])
        paths += batch["path"]
    return torch.cat(embeddings), torch.cat(labels), paths


def run(args) -> int:
    args.device = report.resolve_device(args.device)
    encoder, spec = load_encoder(args.model, device=args.device, with_spec=True)
    generator = translator(args.translate_query, args.device)
    # one class numbering for both folders: the union of their class names
    names = sorted({p.name for folder in (args.query, args.gallery) if folder.is_dir()
                    for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")})
    query = embed(load_folder(args.query, spec, args, names), encoder, generator, args.device)
    gallery = embed(load_folder(args.gallery, spec, args, names), encoder, None, args.device)
    metrics, ranking = retrieval_metrics(query[0], query[1], gallery[0], gallery[1])
    missing = sorted({names[i] for i in query[1].tolist()} - {names[i] for i in gallery[1].tolist()})
    warnings = [f"query classes {', '.join(missing)} have no image in the gallery: those queries can never be "
                "answered right, and pull every score down"] if missing else []
    for warning in warnings:
        log.warning(warning)
    result = {**{k: metrics[k] for k in ("recall@1", "recall@5", "recall@10", "map")}, "cmc": metrics["cmc"],
              "queries": len(query[1]), "gallery": len(gallery[1]), "model": str(args.model),
              "translate_query": str(args.translate_query) if args.translate_query else None, "warnings": warnings}
    if args.html:
        write_html(args.html, query, gallery, ranking, names, result)
        log.info("wrote %s", args.html)
    emit(result, args.json)
    return 0


def write_html(path: Path, query, gallery, ranking: torch.Tensor, names: list[str], result: dict, top: int = 3):
    """One row per query: the query image, then its top answers framed green (same class) or red."""

    def cell(image_path: str, label: int, hit: bool | None) -> str:
        src = quote(os.path.relpath(Path(image_path).resolve(), path.parent.resolve()))
        colour = "#888" if hit is None else ("#2a2" if hit else "#d22")
        return (f'<td><img src="{src}" style="border:3px solid {colour};width:64px;image-rendering:pixelated">'
                f"<br>{html.escape(names[label])}</td>")

    rows = []
    for i, order in enumerate(ranking[:, :top].tolist()):
        q_label = int(query[1][i])
        answers = "".join(cell(gallery[2][j], int(gallery[1][j]), int(gallery[1][j]) == q_label) for j in order)
        rows.append(f"<tr>{cell(query[2][i], q_label, None)}{answers}</tr>")
    summary = ", ".join(f"{k} {result[k]:.4f}" for k in ("recall@1", "recall@5", "recall@10", "map"))
    header = "".join(f"<th>#{k + 1}</th>" for k in range(top))
    write_text_atomic(path, f"<!doctype html><meta charset=utf-8><title>retrieval</title><body>"
                            f"<p>{html.escape(summary)}</p><table><tr><th>query</th>{header}</tr>"
                            f"{''.join(rows)}</table></body>\n")
