"""Untrusted files: links and special files are found without following them, refused or removed,
and a LoRA adapter is copied as its two plain files or not at all."""
import os

import pytest

from coursegrader.config import REPO_ROOT
from coursegrader.grading.untrusted import copy_adapter, copy_regular_tree, read_regular, remove_unsafe, unsafe_entries
from coursegrader.mlflow_store import keep_store

REFERENCE_ADAPTER = REPO_ROOT / "fixtures" / "models" / "tiny-gemma3-ja-gozaru-lora"


@pytest.fixture
def hostile(tmp_path):
    """A work folder holding one of each kind, beside a secret it must never lead to."""
    secret = tmp_path / "secret.txt"
    secret.write_text("hidden test")
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "plain.txt").write_text("ok")
    (work / "sub" / "link").symlink_to(secret)
    (work / "folder-link").symlink_to(tmp_path, target_is_directory=True)
    os.link(secret, work / "hard")
    os.mkfifo(work / "sub" / "pipe")
    return work, secret


def test_unsafe_entries_are_found_without_following(hostile):
    work, _ = hostile
    assert unsafe_entries(work) == [("work/folder-link", "symlink"), ("work/hard", "hard link"),
                                    ("work/sub/link", "symlink"), ("work/sub/pipe", "FIFO")]
    assert unsafe_entries(work / "sub" / "link") == [("link", "symlink")]


def test_removing_them_leaves_what_they_point_to(hostile):
    work, secret = hostile
    assert len(remove_unsafe(work)) == 4
    assert unsafe_entries(work) == [] and (work / "plain.txt").is_file()
    assert secret.read_text() == "hidden test"


def test_read_regular_refuses_links_and_fifos_without_blocking(hostile):
    work, _ = hostile
    assert read_regular(work / "plain.txt", 100) == b"ok"
    for name in ("sub/link", "sub/pipe", "hard"):
        with pytest.raises(OSError):
            read_regular(work / name, 100)
    with pytest.raises(ValueError):
        read_regular(work / "plain.txt", 1)


def test_copies_leave_links_out(hostile, tmp_path):
    work, _ = hostile
    copy_regular_tree(work, tmp_path / "copy")
    assert sorted(p.name for p in (tmp_path / "copy").rglob("*")) == ["plain.txt", "sub"]


def test_an_adapter_is_its_config_and_safetensors_only(tmp_path):
    copied = copy_adapter(REFERENCE_ADAPTER, tmp_path / "ok")
    assert sorted(p.name for p in copied.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    pickled = tmp_path / "pickled"  # weights saved as a pickle (.bin): never loaded by the grader
    pickled.mkdir()
    (pickled / "adapter_config.json").write_bytes((REFERENCE_ADAPTER / "adapter_config.json").read_bytes())
    (pickled / "adapter_model.bin").write_bytes(b"\x80\x04not really")
    assert copy_adapter(pickled, tmp_path / "from-pickled") is None
    linked = tmp_path / "linked"  # weights that are a link to someone else's adapter
    linked.mkdir()
    (linked / "adapter_config.json").write_bytes((REFERENCE_ADAPTER / "adapter_config.json").read_bytes())
    (linked / "adapter_model.safetensors").symlink_to(REFERENCE_ADAPTER / "adapter_model.safetensors")
    assert copy_adapter(linked, tmp_path / "from-linked") is None


def test_a_linked_mlflow_store_is_not_kept(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "mlflow.db").symlink_to(REPO_ROOT / "source" / "ex06" / "ex06.ipynb")
    assert keep_store(work, tmp_path / "kept") is None and not (tmp_path / "kept").exists()
