"""Which files `translate eval retrieval` compares, and which gallery answers are right for each query.

Three ways to say what a hit is:
  class  labeled folders DIR/<class>/<image>: any gallery image of the query's class (category-level retrieval)
  name   the query's one true match is the gallery file with the same relative name, whatever the extension
         (sketches/1001.png -> photos/1001.jpg): instance-level, street-to-shop style
  pairs  a text file of `QUERY GALLERY` relative paths, one pair per line (# comments): instance-level where names
         differ; only the listed queries are asked
Distractor folders add gallery images that answer no query. Labels are integers: gallery image i of an instance-level
set has label i; a query with no answer in the gallery has label -1 and counts as a miss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from translate.data.labeled import find_classes
from translate.evaluation.loading import scored_images

MATCHES = ("class", "name")
DISTRACTOR = -2  # the class label of a distractor image: equal to no query's


@dataclass
class RetrievalSet:
    query: list[Path]
    query_labels: list[int]
    gallery: list[Path]
    gallery_labels: list[int]
    names: list[str]  # a caption per label: class names, or the gallery files' relative names
    level: str  # "class" or "instance"

    def caption(self, label: int) -> str:
        return self.names[label] if label >= 0 else "distractor" if label == DISTRACTOR else "(no match)"


def retrieval_set(query: Path, gallery: Path, match: str = "class", pairs: Path | None = None,
                  distractors: tuple[Path, ...] = ()) -> RetrievalSet:
    for folder in (query, gallery, *distractors):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} {'is not a folder' if folder.exists() else 'does not exist'}")
    extra = [f for folder in distractors for f in scored_images(folder)]
    if pairs is not None:
        return _from_pairs(query, gallery, pairs, extra)
    if match == "class":
        return _by_class(query, gallery, extra)
    if match == "name":
        return _by_name(query, gallery, extra)
    raise ValueError(f"match must be one of {', '.join(MATCHES)}, got {match!r}")


def _by_class(query: Path, gallery: Path, extra: list[Path]) -> RetrievalSet:
    names = sorted(set(find_classes(query)) | set(find_classes(gallery)))  # one numbering for both folders

    def labeled(root: Path) -> tuple[list[Path], list[int]]:
        pairs = [(f, i) for i, name in enumerate(names) if (root / name).is_dir()
                 for f in scored_images(root / name)]
        return [f for f, _ in pairs], [i for _, i in pairs]

    query_files, query_labels = labeled(query)
    gallery_files, gallery_labels = labeled(gallery)
    return RetrievalSet(query_files, query_labels, gallery_files + extra, gallery_labels + [DISTRACTOR] * len(extra),
                        names, "class")


def _instance_gallery(gallery: Path, extra: list[Path]) -> tuple[list[Path], list[str]]:
    files = scored_images(gallery) + extra
    return files, [_relative(f, gallery) for f in files]


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else f"(distractor) {path.name}"


def _by_name(query: Path, gallery: Path, extra: list[Path]) -> RetrievalSet:
    files, names = _instance_gallery(gallery, extra)
    by_stem: dict[str, int] = {}
    for i, f in enumerate(files[:len(files) - len(extra)]):
        stem = f.relative_to(gallery).with_suffix("").as_posix()
        if stem in by_stem:
            raise ValueError(f"{gallery}: {files[by_stem[stem]].name} and {f.name} have the same name; --match name "
                             "needs one gallery file per name (or give --pairs)")
        by_stem[stem] = i
    query_files = scored_images(query)
    labels = [by_stem.get(f.relative_to(query).with_suffix("").as_posix(), -1) for f in query_files]
    return RetrievalSet(query_files, labels, files, list(range(len(files))), names, "instance")


def _from_pairs(query: Path, gallery: Path, pairs: Path, extra: list[Path]) -> RetrievalSet:
    files, names = _instance_gallery(gallery, extra)
    index = {name: i for i, name in enumerate(names)}
    query_files, labels = [], []
    for number, line in enumerate(pairs.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2:
            raise ValueError(f"{pairs}:{number}: expected 'QUERY GALLERY' (two relative paths), got {line!r}")
        if not (query / fields[0]).is_file():
            raise FileNotFoundError(f"{pairs}:{number}: query {query / fields[0]} does not exist")
        query_files.append(query / fields[0])
        labels.append(index.get(Path(fields[1]).as_posix(), -1))
    if not query_files:
        raise ValueError(f"{pairs} lists no pairs")
    return RetrievalSet(query_files, labels, files, list(range(len(files))), names, "instance")
