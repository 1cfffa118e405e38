"""eval scores what it was given: a gallery written into an output folder changes no score and no count."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.helpers import write_images
from translate import cli


@pytest.fixture
def outputs_with_gallery(tmp_path):
    """A converted folder (6 outputs of 6 inputs), scored before and after `translate gallery` wrote into it."""
    write_images(tmp_path / "in", 6, (40, 40), seed=0)
    write_images(tmp_path / "real", 6, (40, 40), seed=1)
    shutil.copytree(tmp_path / "in", tmp_path / "out")
    return tmp_path


def score(capsys, *argv) -> dict:
    assert cli.main(["eval", *argv, "--no-progress"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("metric", ["fid", "imagenet-class", "paired"])
def test_a_gallery_in_the_folder_changes_nothing_but_the_note_of_what_was_left_out(outputs_with_gallery, capsys,
                                                                                     metric):
    root = outputs_with_gallery
    argv = {"fid": ["fid", "--real", str(root / "real"), "--fake", str(root / "out"), "--image-size", "64"],
            "imagenet-class": ["imagenet-class", "--folder", str(root / "out"), "--class", "zebra"],
            "paired": ["paired", "--pred", str(root / "out"), "--target", str(root / "real")]}[metric]
    before = score(capsys, *argv)
    assert cli.main(["gallery", str(root / "in"), str(root / "out")]) == 0
    assert len(list((root / "out" / "_gallery").rglob("*.jpg")) + list((root / "out" / "_gallery").rglob("*.png")))
    capsys.readouterr()
    after = score(capsys, *argv)
    left_out = after.pop("skipped")
    assert len(left_out) == 1 and left_out[0]["path"].endswith("_gallery") and "not scored" in left_out[0]["reason"]
    for report in (before, after):
        report.pop("reference_cache", None)  # the second run reads the real set's features from the cache
    before.pop("skipped")
    assert after == before  # same counts (n_fake, n, n_pairs) and the same scores
