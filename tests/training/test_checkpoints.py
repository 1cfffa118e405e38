"""Checkpoint faults: crafted pickles run no code, damaged checkpoints fall back to an intact older one and still
end bit-identical, configuration changes are refused before anything is written, a full disk is named."""

import errno
import json
import os
import pickle
import re
from pathlib import Path

import pytest
import torch

from tests.helpers import PIX2PIX_TINY, assert_same_weights
from translate import config
from translate.training import checkpoints
from translate.training.loop import train

# decay_steps=0: the lr is constant through the last step whatever max_steps is, so a run of 4 steps resumed to 6
# computes exactly what a run of 6 does.
RUN = [*PIX2PIX_TINY, "train.decay_steps=0", "train.keep_checkpoints=0"]


class RunsCode:
    """Unpickling this creates a marker file: the proof that a loader executed code from a checkpoint."""

    marker: Path

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def crafted_pickle(path: Path, marker: Path) -> None:
    RunsCode.marker = marker
    path.write_bytes(pickle.dumps(RunsCode()))


@pytest.fixture
def straight(aligned_root, tmp_path) -> Path:
    """The uninterrupted 6-step run's export."""
    return train(config.load(None, [*RUN, f"data.root={aligned_root}", "train.max_steps=6"]), tmp_path / "straight")


def four_steps(aligned_root, run: Path) -> None:
    """A run stopped after step 4: checkpoints step 2 and step 4."""
    train(config.load(None, [*RUN, f"data.root={aligned_root}", "train.max_steps=4"]), run)


def resume_to_six(aligned_root, run: Path) -> Path:
    return train(config.load(None, [*RUN, f"data.root={aligned_root}", "train.max_steps=6"]), run, resume=True)


@pytest.mark.parametrize("target", ["state.pt", "optimizers/G.pt", "rng_0.pt", "custom_checkpoint_0.pkl"])
def test_a_crafted_pickle_runs_no_code_and_the_older_checkpoint_is_used(target, aligned_root, tmp_path, straight,
                                                                       caplog):
    run, marker = tmp_path / "run", tmp_path / "code_ran"
    four_steps(aligned_root, run)
    crafted_pickle(run / "checkpoints" / "step_00000004" / target, marker)  # protocol 4: warns, then refused
    with caplog.at_level("WARNING"):
        resumed = resume_to_six(aligned_root, run)
    assert not marker.exists(), "unpickling a checkpoint file executed code"
    if target == "custom_checkpoint_0.pkl":  # not a file of ours: never read, the newest checkpoint is used
        assert "cannot resume" not in caplog.text
    else:
        assert f"step_00000004/{target} cannot be read" in caplog.text
        assert "resumed from the older checkpoint" in caplog.text
    assert_same_weights(straight, resumed)


@pytest.mark.parametrize("damage", ["truncate nets/G.safetensors", "truncate rng_0.pt", "delete rng_0.pt",
                                    "shorten rng_0.pt", "truncate state.pt", "delete meta.json"])
def test_a_damaged_newest_checkpoint_falls_back_and_ends_bit_identical(damage, aligned_root, tmp_path, straight,
                                                                       caplog):
    run = tmp_path / "run"
    four_steps(aligned_root, run)
    how, name = damage.split()
    path = run / "checkpoints" / "step_00000004" / name
    if how == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "shorten":  # loads fine, but Python's RNG state vector is 100 long, not 625
        torch.save(with_python_rng_of_length(100), path)
    else:
        path.unlink()
    with caplog.at_level("WARNING"):
        resumed = resume_to_six(aligned_root, run)
    assert f"step_00000004/{name}" in caplog.text
    assert_same_weights(straight, resumed)
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # the lines of steps 3-4 were logged again, once


def with_python_rng_of_length(length: int) -> dict:
    states = checkpoints.rng_states()
    version, internal, gauss = states["python"]
    return {**states, "python": (version, internal[:length], gauss)}


def bad_rng_states() -> dict[str, dict]:
    """RNG files that torch's weights-only loader reads without complaint but no RNG can take, by what is wrong."""
    good = checkpoints.rng_states()
    numpy = good["numpy"]
    return {
        "python: state vector is the wrong size": with_python_rng_of_length(100),
        "python: the cached gaussian is str": {**good, "python": (*good["python"][:2], "x")},
        "numpy: pos": {**good, "numpy": {**numpy, "pos": 10_000}},  # numpy itself would accept it, then read past
        "numpy: the key holds values outside 32 bits": {**good, "numpy": {**numpy, "key": numpy["key"] - 2**40}},
        "numpy: the key is torch.int64 of shape (10,), not 624 int64": {**good, "numpy": {**numpy,
                                                                                         "key": numpy["key"][:10]}},
        "numpy: the key is torch.float32": {**good, "numpy": {**numpy, "key": numpy["key"].float()}},
        "numpy: set_state can only be used with legacy MT19937": {**good, "numpy": {**numpy, "kind": "PCG64"}},
        "torch: Expected a CPUGeneratorImplState of size": {**good, "torch": good["torch"][:100]},
        "torch: RNG state must be a torch.ByteTensor": {**good, "torch": good["torch"].long()},
        "cuda: device 0's state is not a byte vector": {**good, "cuda": [torch.zeros(3)]},
    }


@pytest.mark.parametrize("problem", sorted(bad_rng_states()))
def test_an_rng_state_no_rng_can_take_is_refused_when_read_naming_the_rng(problem, tmp_path):
    import random

    import numpy as np

    path = tmp_path / "rng_0.pt"
    torch.save(bad_rng_states()[problem], path)
    kind, _, detail = problem.partition(": ")
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with pytest.raises(ValueError, match=rf"not an RNG state \(the {kind} state: {re.escape(detail)}"):
        checkpoints.parse_rng_states(torch.load(path, weights_only=True))
    after = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    assert after == (random.random(), np.random.rand(), torch.rand(1).item()), "checking moved a global RNG"


def test_no_usable_checkpoint_is_an_error_naming_each(aligned_root, tmp_path):
    run = tmp_path / "run"
    four_steps(aligned_root, run)
    for folder in (run / "checkpoints").iterdir():
        (folder / "state.pt").write_bytes(b"")
    with pytest.raises(checkpoints.CheckpointError, match="step_00000002/state.pt.*step_00000004/state.pt|"
                                                          "step_00000004/state.pt.*step_00000002/state.pt"):
        resume_to_six(aligned_root, run)


def test_a_changed_architecture_is_refused_before_anything_is_written(aligned_root, tmp_path):
    run = tmp_path / "run"
    four_steps(aligned_root, run)
    saved = (run / "config.yaml").read_text()
    metrics = (run / "metrics.jsonl").read_text()
    with pytest.raises(config.ConfigError, match=r"data.batch_size: 2 -> 1, model.ngf: 4 -> 8"):
        train(config.load(None, [*RUN, f"data.root={aligned_root}", "model.ngf=8", "data.batch_size=1"]), run,
              resume=True)
    assert (run / "config.yaml").read_text() == saved
    assert (run / "metrics.jsonl").read_text() == metrics


def test_a_partial_last_metrics_line_and_a_stale_temporary_do_not_block_resume(aligned_root, tmp_path, straight):
    run = tmp_path / "run"
    four_steps(aligned_root, run)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "loss_D": 0.6')  # a crash or full disk mid-write
    stale = run / "checkpoints" / ".tmp_step_00000006"
    stale.mkdir()
    (stale / "nets").mkdir()
    resumed = resume_to_six(aligned_root, run)
    assert not stale.exists()
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4,
                                                                                                        5, 6]
    assert_same_weights(straight, resumed)


def test_a_full_disk_is_named_and_leaves_no_temporary_folder(aligned_root, tmp_path, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_safetensors", no_space)
    run = tmp_path / "run"
    with pytest.raises(OSError, match="disk full while writing checkpoint .*step_00000002"):
        train(config.load(None, [*RUN, f"data.root={aligned_root}"]), run)
    assert list((run / "checkpoints").iterdir()) == []


class OneProcess:
    num_processes, process_index, is_main_process = 1, 0, True

    def wait_for_everyone(self):
        pass


def test_a_checkpoint_of_another_world_size_is_refused(tmp_path):
    net = torch.nn.Linear(2, 2)
    state = checkpoints.TrainingState(nets={"net": net}, optimizers={}, objects={})
    folder = checkpoints.save(tmp_path, 1, state, OneProcess(), keep=0)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "world_size": 2}))
    with pytest.raises(checkpoints.CheckpointError, match="written by 2 processes, this run has 1"):
        checkpoints.load(folder, state, OneProcess())


def test_rng_states_round_trip_exactly(tmp_path):
    import random

    import numpy as np

    torch.save(checkpoints.rng_states(), tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    checkpoints.set_rng_states(checkpoints.parse_rng_states(torch.load(tmp_path / "rng.pt", weights_only=True)))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
