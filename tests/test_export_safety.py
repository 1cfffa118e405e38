"""Reading an export never leaves its folder: a net name that is a path, or a weights file or config.json that is
a link to elsewhere, is refused by every loader (convert, serve, load_generator, load_classifier) with one line
naming the export and the net; and a .pth that is not a checkpoint says so in one line naming the file."""

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.helpers import make_classifier_export, make_cyclegan_export
from translate import cli
from translate.export import load_classifier, load_generator, read_checkpoint, read_export_config
from translate.inference.model import ModelError, load_model


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return make_cyclegan_export(tmp_path_factory.mktemp("model") / "export")


@pytest.fixture
def export(pristine, tmp_path) -> Path:
    """A fresh copy of the export, beside a folder `secret` holding a valid weights file that is not the export's."""
    path = shutil.copytree(pristine, tmp_path / "export")
    (tmp_path / "secret").mkdir()
    shutil.copy(path / "G_AB.safetensors", tmp_path / "secret" / "G.safetensors")
    return path


def rename_net(export: Path, old: str, new: str) -> None:
    config = json.loads((export / "config.json").read_text())
    config["nets"] = {new if name == old else name: spec for name, spec in config["nets"].items()}
    (export / "config.json").write_text(json.dumps(config))


def convert_error(export: Path, net: str, tmp_path: Path, capsys) -> str:
    """`translate convert` with this model: its exit code must be 2; returns the error line."""
    (tmp_path / "in").mkdir(exist_ok=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "a.png")
    capsys.readouterr()
    assert cli.main(["convert", str(export), str(tmp_path / "in"), str(tmp_path / "out"), "--net", net,
                     "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_a_net_name_that_is_a_path_is_refused_by_every_loader(export, tmp_path, capsys):
    from translate.serve.worker import Worker

    rename_net(export, "G_AB", "../secret/G")
    message = f"export {export}: net name '../secret/G' in config.json is not a plain name"
    err = convert_error(export, "../secret/G", tmp_path, capsys)
    assert message in err, err
    for load in (read_export_config, lambda path: load_generator(path, net="G_BA"),
                 lambda path: Worker(path, torch.device("cpu"))):
        with pytest.raises(ValueError, match="is not a plain name"):
            load(export)
    with pytest.raises(ModelError, match="is not a plain name"):
        load_model(export, "G_BA")


@pytest.mark.parametrize("which", ["weights", "config"])
def test_a_file_linked_from_outside_the_export_is_refused(which, export, tmp_path, capsys):
    name = "G_AB.safetensors" if which == "weights" else "config.json"
    shutil.move(export / name, tmp_path / "secret" / name)
    (export / name).symlink_to(tmp_path / "secret" / name)
    what = "the weights of net 'G_AB'" if which == "weights" else "its config"
    err = convert_error(export, "G_AB", tmp_path, capsys)
    assert f"export {export}: {what} ({name}) lead to {tmp_path / 'secret' / name}, outside the export folder" in err
    with pytest.raises(ValueError, match="outside the export folder"):
        load_generator(export, net="G_AB")
    with pytest.raises(ModelError, match="outside the export folder"):
        load_model(export, "G_AB")


def test_a_classifier_weights_link_to_outside_is_refused(tmp_path):
    export = make_classifier_export(tmp_path / "export")
    (tmp_path / "elsewhere").mkdir()
    shutil.move(export / "classifier.safetensors", tmp_path / "elsewhere" / "classifier.safetensors")
    (export / "classifier.safetensors").symlink_to(tmp_path / "elsewhere" / "classifier.safetensors")
    with pytest.raises(ValueError, match="the weights of net 'classifier'.*outside the export folder"):
        load_classifier(export)


def test_links_and_the_export_folder_itself_may_stay_inside(export, tmp_path):
    (export / "kept").mkdir()
    shutil.move(export / "G_AB.safetensors", export / "kept" / "G_AB.safetensors")
    (export / "G_AB.safetensors").symlink_to("kept/G_AB.safetensors")
    (tmp_path / "linked").symlink_to(export, target_is_directory=True)
    assert load_model(tmp_path / "linked", "G_AB").name == "G_AB"


@pytest.mark.parametrize("content, message", [
    (bytes(range(7, 256)) * 8, "is not a PyTorch checkpoint (neither a zip archive nor a pickle)"),
    (b"\x80\x02garbage", "is not a readable PyTorch checkpoint: damaged or truncated"),
    (b"PK\x03\x04truncated zip", "is not a readable PyTorch checkpoint: damaged or truncated"),
    (b"", "is not a PyTorch checkpoint"),
])
def test_a_pth_that_is_no_checkpoint_is_one_line_naming_it(content, message, tmp_path):
    path = tmp_path / "latest_net_G_A.pth"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"^{re.escape(f'{path} {message}')}"):
        read_checkpoint(path)
    with pytest.raises(ModelError) as caught:
        load_model(path, arch="resnet_6blocks")
    assert str(caught.value).startswith(f"model {path} {message}")
    assert len(str(caught.value).splitlines()) == 1


def test_a_pth_with_pickled_code_is_refused_in_one_line(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"model.1.weight": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(ModelError) as caught:
        load_model(tmp_path / "evil.pth", arch="resnet_6blocks")
    assert str(caught.value).startswith(f"model {tmp_path / 'evil.pth'} holds Python objects besides tensors")
    assert len(str(caught.value).splitlines()) == 1
