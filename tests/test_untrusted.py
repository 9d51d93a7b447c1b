"""Untrusted files: links and special files are found without following them, refused or removed,
and a LoRA adapter is copied as its two plain files or not at all."""
import os

import pytest

from coursegrader.config import REPO_ROOT, load_course
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
    copied = copy_adapter(REFERENCE_ADAPTER, tmp_path / "ok", load_course().limits)
    assert sorted(p.name for p in copied.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    pickled = tmp_path / "pickled"  # weights saved as a pickle (.bin): never loaded by the grader
    pickled.mkdir()
    (pickled / "adapter_config.json").write_bytes((REFERENCE_ADAPTER / "adapter_config.json").read_bytes())
    (pickled / "adapter_model.bin").write_bytes(b"\x80\x04not really")
    assert copy_adapter(pickled, tmp_path / "from-pickled", load_course().limits) is None
    linked = tmp_path / "linked"  # weights that are a link to someone else's adapter
    linked.mkdir()
    (linked / "adapter_config.json").write_bytes((REFERENCE_ADAPTER / "adapter_config.json").read_bytes())
    (linked / "adapter_model.safetensors").symlink_to(REFERENCE_ADAPTER / "adapter_model.safetensors")
    assert copy_adapter(linked, tmp_path / "from-linked", load_course().limits) is None


def test_a_linked_mlflow_store_is_not_kept(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "mlflow.db").symlink_to(REPO_ROOT / "source" / "ex06" / "ex06.ipynb")
    assert keep_store(work, tmp_path / "kept", load_course()) is None and not (tmp_path / "kept").exists()


def _deep(root, depth: int, name: str = "d"):
    """A folder nested `depth` levels deep, made with relative paths (the whole path may exceed PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        with open(os.open("file.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as fh:
            fh.write("deep")
    finally:
        os.close(fd)


@pytest.mark.parametrize("depth, name", [(1200, "d"), (40, "n" * 200)])  # a RecursionError; paths past PATH_MAX
def test_folders_of_any_depth_and_path_length_are_walked_copied_and_removed(tmp_path, depth, name):
    from coursegrader.grading.untrusted import TOO_LONG, remove_tree, temporary_folder

    with temporary_folder("deep-") as work:
        (work / "plain.txt").write_text("ok")
        _deep(work, depth, name)
        found = unsafe_entries(work)
        assert found and {kind for _, kind in found} == {TOO_LONG}  # too long to stat or enter: unsafe itself
        copy_regular_tree(work, work.parent / f"{work.name}-copy")
        assert (work.parent / f"{work.name}-copy" / "plain.txt").read_text() == "ok"
        remove_tree(work.parent / f"{work.name}-copy")  # ~1,000 levels: pytest's own cleanup would recurse
        assert remove_unsafe(work) == found and unsafe_entries(work) == []
        _deep(work, depth, name + "2")  # left for temporary_folder to remove
    assert not work.exists()


def _store(path, sql: str = ""):
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.executescript("CREATE TABLE runs (artifact_uri TEXT, note VARCHAR(100));"
                           f"INSERT INTO runs VALUES ('{path.parent}/mlruns/1', 'x');" + sql)
    conn.close()


@pytest.mark.parametrize("case", ["not_sqlite", "endless_trigger", "costly_trigger"])
def test_a_hostile_mlflow_store_is_not_kept_nor_run(tmp_path, case):
    """A store that is not SQLite, or whose triggers would run inside the grader as it rewrites paths (the red
    team's: 33 s of CPU; an endless one would hang it): kept within store_budget_s, triggers never fired."""
    import sqlite3
    import time

    from coursegrader.mlflow_store import StoreUnusable, distrust_store

    work = tmp_path / "work"
    work.mkdir()
    db = work / "mlflow.db"
    if case == "not_sqlite":
        db.write_bytes(b"not a database" * 1000)
    else:
        loop = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
                if case == "endless_trigger" else
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 50000000) SELECT count(*) FROM c")
        _store(db, f"CREATE TABLE fired (n INTEGER); CREATE TRIGGER t AFTER UPDATE ON runs BEGIN "
                   f"INSERT INTO fired {loop}; END;")
    start = time.monotonic()
    kept = keep_store(work, tmp_path / "kept", load_course())
    assert time.monotonic() - start < 5
    if case == "not_sqlite":
        assert kept is None and not (tmp_path / "kept").exists()
        with pytest.raises(StoreUnusable):
            distrust_store(db, load_course().limits.store_budget_s)
        return
    with sqlite3.connect(kept) as conn:
        assert conn.execute("SELECT count(*) FROM fired").fetchone() == (0,)
        assert conn.execute("SELECT artifact_uri FROM runs").fetchone()[0] == f"{(tmp_path / 'kept').resolve()}/mlruns/1"
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone() == (0,)


def test_a_store_over_the_limit_is_not_kept(tmp_path):
    from coursegrader.config import load_course

    work = tmp_path / "work"
    (work / "mlruns").mkdir(parents=True)
    _store(work / "mlflow.db")
    with open(work / "mlruns" / "big.bin", "wb") as fh:  # sparse: its size counts, no byte is written
        fh.truncate(load_course().limits.kept_store_bytes)
    assert keep_store(work, tmp_path / "kept", load_course()) is None
    (work / "mlruns" / "big.bin").unlink()
    assert keep_store(work, tmp_path / "kept", load_course()) == tmp_path / "kept" / "mlflow.db"
