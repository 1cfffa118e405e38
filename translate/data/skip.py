"""`data.skip_unreadable=true`: a training set that steps over image files it cannot read instead of stopping.

Without it a corrupt file stops the run at the step that first draws it, and again at that step after every resume
(`translate check-data` finds such files beforehand). With it, an item whose file cannot be read is replaced by
another item chosen from the key alone, so exact resume holds: the same key gives the same replacement in any
worker, process or resumed run. The skipped paths travel with the batch to the main process, which warns once per
file however many workers or epochs meet it.
"""

from __future__ import annotations

import logging

from torch.utils.data import Dataset

from translate.data.images import ImageReadError
from translate.data.sampler import derive_seed, split_key

log = logging.getLogger(__name__)
SKIPPED = "skipped_files"  # batch key: the paths an item stepped over, joined by NUL (no path holds one)
MAX_DRAWS = 32  # replacements tried for one item before the data is judged unusable
_REPLACE = 0x5C1B  # derive_seed stream of a replacement draw, apart from the datasets' own streams


class SkipUnreadable(Dataset):
    """Wraps a key-indexed dataset: `dataset[key]`, or when a file of it is unreadable, the item of the key
    derived from it (`replacement`), and so on. Each item gets SKIPPED: the paths stepped over ("" for none)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self.warned: set[str] = set()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key) -> dict:
        index, seed = split_key(key)
        skipped = []
        for _ in range(MAX_DRAWS):
            try:
                item = self.dataset[(index, seed)]
            except ImageReadError as error:
                skipped.append(error.path or str(error))
                index, seed = replacement(seed, len(self))
                continue
            return {**item, SKIPPED: "\0".join(skipped)}
        raise ImageReadError(skipped[0], f"unreadable, and so were all {MAX_DRAWS - 1} replacements drawn for it "
                                         "(data.skip_unreadable): too much of the training set cannot be read; "
                                         "translate check-data lists the files")

    def report(self, batch: dict) -> dict:
        """In the main process: warn once about each newly skipped file, and drop SKIPPED from the batch."""
        for joined in batch.pop(SKIPPED, ()):
            for path in joined.split("\0") if joined else ():
                if path not in self.warned:
                    self.warned.add(path)
                    log.warning("skipping unreadable training image %s (data.skip_unreadable); another sample "
                                "is drawn in its place", path)
        return batch


def replacement(seed: int, length: int) -> tuple[int, int]:
    """The key drawn in place of an unreadable item: a function of its seed alone (not of time or worker)."""
    new_seed = derive_seed(seed, _REPLACE)
    return new_seed % length, new_seed
