"""`translate gallery INPUT_DIR OUTPUT_DIR`: HTML pages of input | output thumbnails to look through a conversion.

Built for thousands of images: small JPEG thumbnails made in threads and reused when newer than their image, pages
of a fixed number of rows, lazy-loaded <img>. Everything goes into OUTPUT_DIR/_gallery; INPUT_DIR is only read:
every page and thumbnail is checked and written through translate.convert.safe_paths, so no link in OUTPUT_DIR
leads a write into it.
Pairs come from OUTPUT_DIR/manifest.json when `translate convert` wrote one, else from matching relative paths
without extension.
"""

from __future__ import annotations

import html
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from PIL import Image
from tqdm import tqdm

from translate.convert.manifest import GALLERY, MANIFEST
from translate.convert.plan import walk
from translate.convert.safe_paths import OutputFolder, UnsafeOutput
from translate.data.images import read_image

_STYLE = ("body{font-family:sans-serif;margin:1em}td{padding:4px;vertical-align:top}"
          "img{max-width:256px;max-height:256px;background:#ddd}nav a{margin-right:.4em}")


def add_arguments(parser) -> None:
    parser.add_argument("input_dir", type=Path, help="the images that were converted")
    parser.add_argument("output_dir", type=Path, help="the converted images; the gallery goes into its _gallery/")
    parser.add_argument("--per-page", type=int, default=100, help="rows per page")
    parser.add_argument("--thumb-size", type=int, default=256, help="longest side of a thumbnail, pixels")
    parser.add_argument("--workers", type=int, default=4, help="threads making thumbnails")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args) -> int:
    index = build_gallery(args.input_dir, args.output_dir, args.per_page, args.thumb_size, args.workers,
                          progress=not args.no_progress)
    print(f"gallery: {index}")
    return 0


def find_pairs(input_dir: Path, output_dir: Path) -> list[tuple[str, str]]:
    """(input, output) relative paths, sorted by input."""
    manifest = output_dir / MANIFEST
    if manifest.is_file():
        images = json.loads(manifest.read_text()).get("images", [])
        return sorted((r["input"], r["output"]) for r in images)
    outputs = {}
    for path in walk(output_dir)[0]:
        rel = path.relative_to(output_dir)
        if rel.parts[0] != GALLERY:
            outputs[rel.with_suffix("").as_posix()] = rel.as_posix()
    inputs = (p.relative_to(input_dir) for p in walk(input_dir)[0])
    keyed = ((rel.as_posix(), rel.with_suffix("").as_posix()) for rel in inputs)
    return sorted((rel, outputs[key]) for rel, key in keyed if key in outputs)


def gallery_paths(output_dir: Path, pairs: list[tuple[str, str]], per_page: int = 100) -> list[Path]:
    """Every file the gallery of `pairs` writes: its pages and the input and output thumbnails."""
    root = output_dir / GALLERY
    pages = [root / name for name in page_names(-(-len(pairs) // per_page))]
    return pages + [thumb_path(root, "in", i) for i, _ in pairs] + [thumb_path(root, "out", o) for _, o in pairs]


def page_names(count: int) -> list[str]:
    return ["index.html"] + [f"page-{k}.html" for k in range(2, count + 1)]


def thumb_path(root: Path, side: str, rel: str) -> Path:
    return root / "thumbs" / side / f"{rel}.jpg"


def make_thumbnail(source: Path, thumb: Path, size: int, folder: OutputFolder) -> None:
    """A JPEG of at most size x size, transparency shown over grey; kept if newer than its image."""
    if thumb.is_file() and thumb.stat().st_mtime >= source.stat().st_mtime:
        return
    img = read_image(source)
    img.thumbnail((size, size))
    if img.mode in ("LA", "RGBA"):
        img = Image.alpha_composite(Image.new("RGBA", img.size, (200, 200, 200, 255)), img.convert("RGBA"))
    with folder.open_atomic(thumb) as file:
        img.convert("RGB").save(file, format="JPEG", quality=85)


def build_gallery(input_dir: Path, output_dir: Path, per_page: int = 100, thumb_size: int = 256,
                  workers: int = 4, progress: bool = True) -> Path:
    """Write the thumbnails and pages; returns the first page, OUTPUT_DIR/_gallery/index.html."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not output_dir.is_dir():
        raise FileNotFoundError(f"output folder {output_dir} does not exist")
    folder = OutputFolder(input_dir, output_dir)  # OUTPUT_DIR must not be in, or around, INPUT_DIR
    if per_page < 1 or thumb_size < 1:
        raise ValueError("--per-page and --thumb-size must be positive")
    pairs = find_pairs(input_dir, output_dir)
    if not pairs:
        raise ValueError(f"no converted images of {input_dir} found in {output_dir}")
    folder.check_all(gallery_paths(output_dir, pairs, per_page), [input_dir / i for i, _ in pairs])
    folder.check_writable()
    root = output_dir / GALLERY
    tasks = [(input_dir / i, thumb_path(root, "in", i)) for i, _ in pairs]
    tasks += [(output_dir / o, thumb_path(root, "out", o)) for _, o in pairs]

    def thumbnail_or_none(task):
        try:
            make_thumbnail(*task, thumb_size, folder)
            return task[1]
        except UnsafeOutput:  # a link put in OUTPUT_DIR since the check: stop, as the check would have
            raise
        except Exception:  # an unreadable image gets a text cell instead of a thumbnail
            return None

    with ThreadPoolExecutor(max(1, workers)) as pool:
        made = set(tqdm(pool.map(thumbnail_or_none, tasks), total=len(tasks), desc="thumbnails", unit="img",
                        disable=not progress))
    pages = [pairs[i:i + per_page] for i in range(0, len(pairs), per_page)]
    names = page_names(len(pages))
    for k, page in enumerate(pages):
        rows = []
        for i, o in page:
            cells = [_cell(input_dir / i, thumb_path(root, "in", i), root, made),
                     _cell(output_dir / o, thumb_path(root, "out", o), root, made)]
            rows.append(f"<tr><td>{html.escape(i)}</td>{''.join(cells)}</tr>")
        shown = sorted({0, len(pages) - 1} | set(range(max(0, k - 5), min(len(pages), k + 6))))
        nav = " ".join(f"<b>{n + 1}</b>" if n == k else f'<a href="{names[n]}">{n + 1}</a>' for n in shown)
        text = (f"<!doctype html><meta charset='utf-8'><title>{html.escape(str(output_dir))} ({k + 1}/{len(pages)})"
                f"</title><style>{_STYLE}</style><h1>{html.escape(str(input_dir))} &rarr; "
                f"{html.escape(str(output_dir))}</h1><p>{len(pairs)} images</p><nav>{nav}</nav>"
                f"<table><tr><th>name</th><th>input</th><th>output</th></tr>{''.join(rows)}</table><nav>{nav}</nav>")
        folder.write_text(root / names[k], text)
    return root / names[0]


def _cell(image: Path, thumb: Path, root: Path, made: set) -> str:
    link = quote(Path(os.path.relpath(image, root)).as_posix())
    if thumb not in made:
        return f'<td><a href="{link}">(unreadable)</a></td>'
    src = quote(thumb.relative_to(root).as_posix())
    return f'<td><a href="{link}"><img src="{src}" loading="lazy" alt=""></a></td>'
