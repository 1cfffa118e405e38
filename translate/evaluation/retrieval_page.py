"""The page of `translate eval retrieval --html`: one row per query, its image and its top answers framed green (a
right answer) or red, and, at instance level, where its true match ranked when it is not among them (that is what
shows which items get confused). Images are small JPEG thumbnails written beside the page (PAGE_files/), so the
page shows exactly what was embedded (a half of a side-by-side file, resized) and can be copied as one folder."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import torch
from PIL import Image

from translate.evaluation.retrieval_sets import RetrievalSet
from translate.utils import atomic_path, write_text_atomic

THUMB = 96


def write_page(path: Path, data: RetrievalSet, query_thumbs: list[torch.Tensor], gallery_thumbs: list[torch.Tensor],
               ranking: torch.Tensor, result: dict, top: int = 5) -> None:
    folder = path.with_name(f"{path.stem}_files")
    if folder.exists():
        shutil.rmtree(folder)  # thumbnails of an earlier page would mix in
    folder.mkdir(parents=True)
    written: set[str] = set()

    def cell(kind: str, index: int, thumb: torch.Tensor, label: int, hit: bool | None, note: str = "") -> str:
        name = f"{kind}_{index:06d}.jpg"
        if name not in written:
            with atomic_path(folder / name) as tmp:
                Image.fromarray(thumb.permute(1, 2, 0).numpy()).save(tmp, format="JPEG", quality=90)
            written.add(name)
        colour = "#888" if hit is None else ("#2a2" if hit else "#d22")
        return (f'<td><img src="{folder.name}/{name}" style="border:3px solid {colour};width:{THUMB}px">'
                f"<br><small>{html.escape(note or data.caption(label))}</small></td>")

    rows = []
    for i, order in enumerate(ranking[:, :top].tolist()):
        label = data.query_labels[i]
        cells = [cell("q", i, query_thumbs[i], label, None, data.query[i].name)]
        cells += [cell("g", j, gallery_thumbs[j], data.gallery_labels[j], data.gallery_labels[j] == label)
                  for j in order]
        if data.level == "instance" and label >= 0 and label not in [data.gallery_labels[j] for j in order]:
            rank = ranking[i].tolist().index(label) + 1  # instance level: gallery image i has label i
            cells.append(cell("g", label, gallery_thumbs[label], label, True, f"true match: rank {rank}"))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    summary = ", ".join(f"{k} {result[k]:.4f}" for k in ("recall@1", "recall@5", "recall@10", "map"))
    header = "".join(f"<th>#{k + 1}</th>" for k in range(top))
    write_text_atomic(path, f"<!doctype html><meta charset=utf-8><title>retrieval</title><body>"
                            f"<p>{html.escape(summary)}; {result['queries']} queries, {result['gallery']} gallery "
                            f"images</p><table><tr><th>query</th>{header}</tr>{''.join(rows)}</table></body>\n")
