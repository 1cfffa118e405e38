"""train.keep_checkpoints: after each checkpoint of a run with checkpoint_every=1, exactly the newest `keep`
step_* folders remain (0 keeps all), and a resume continues from the newest."""

import json

import pytest

from tests.helpers import CLASSIFIER_TINY, write_labeled
from translate import config
from translate.training import checkpoints
from translate.training.loop import train

RUN = [*CLASSIFIER_TINY, "data.load_size=16", "data.crop_size=16", "data.preprocess=resize", "data.flip=false",
       "data.batch_size=2", "data.num_workers=0", "train.max_steps=3", "train.decay_steps=0",
       "train.checkpoint_every=1", "train.sample_every=100", "train.log_every=1"]


@pytest.mark.parametrize("keep, expected", [
    (1, [["step_00000001"], ["step_00000002"], ["step_00000003"]]),
    (2, [["step_00000001"], ["step_00000001", "step_00000002"], ["step_00000002", "step_00000003"]]),
    (0, [["step_00000001"], ["step_00000001", "step_00000002"],
         ["step_00000001", "step_00000002", "step_00000003"]]),
], ids=["keep1", "keep2", "keep0"])
def test_only_the_newest_checkpoints_are_kept(keep, expected, tmp_path, monkeypatch):
    save, seen = checkpoints.save, []

    def save_and_list(root, *args, **kwargs):
        final = save(root, *args, **kwargs)
        seen.append([p.name for p in checkpoints.checkpoint_folders(root)])
        assert final.name == seen[-1][-1]  # the folder just written survives its own rotation
        return final

    monkeypatch.setattr(checkpoints, "save", save_and_list)
    root = write_labeled(tmp_path / "data", per_class=2)
    run = tmp_path / "run"
    train(config.load(None, [*RUN, f"data.root={root}", f"train.keep_checkpoints={keep}"]), run)
    assert seen == expected
    assert not list((run / "checkpoints").glob(".tmp_*"))  # no temporary folder left either

    train(config.load(None, [*RUN, f"data.root={root}", f"train.keep_checkpoints={keep}", "train.max_steps=4"]), run,
          resume=True)
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    assert seen[-1] == [*expected[-1], "step_00000004"][-keep if keep else 0:]
