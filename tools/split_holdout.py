"""Split a validation part off a dataset's training folders, as symlinks (the data is never copied or changed).

    python tools/split_holdout.py ../shared/data/horse2zebra runs/h2z_split --count 100
    -> runs/h2z_split/trainA, trainB (the rest) and valA, valB (every k-th image, `count` per folder)

Every folder of SRC whose name starts with "train" is split (train -> train + val, trainA -> trainA + valA);
other folders are linked as they are. The held-out images are spread evenly over the sorted file list.
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from translate.data.folders import list_images  # noqa: E402


def split(src: Path, out: Path, count: int) -> dict[str, int]:
    counts = {}
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        files = list_images(folder)
        if not folder.name.startswith("train"):
            _link_all(files, folder, out / folder.name)
            counts[folder.name] = len(files)
            continue
        if count >= len(files):
            raise SystemExit(f"{folder}: cannot hold out {count} of {len(files)} images")
        step = len(files) / count
        held = {files[int(i * step)] for i in range(count)}
        val_name = "val" + folder.name[len("train"):]
        if (src / val_name).exists():
            raise SystemExit(f"{src / val_name} exists already: use it as the validation split")
        _link_all([f for f in files if f not in held], folder, out / folder.name)
        _link_all(sorted(held), folder, out / val_name)
        counts[folder.name], counts[val_name] = len(files) - count, count
    return counts


def _link_all(files: list[Path], root: Path, dest: Path) -> None:
    for f in files:
        target = dest / f.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.symlink(f.resolve(), target)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=100, help="images held out per train folder")
    args = parser.parse_args()
    print(split(args.src, args.out, args.count))
