"""Submissions, and everything a kernel wrote, are untrusted files.

The grader follows no link in them and reads no FIFO or device: a symlink, hard link,
FIFO, socket or device node is found with lstat (never followed), reported, and
removed from a work folder before anything reads it. The grader unpickles nothing:
of a LoRA adapter it reads only adapter_config.json and adapter_model.safetensors.

Folders may be nested to any depth and paths be longer than PATH_MAX: every walk here is
iterative, an entry whose path is longer than PATH_LIMIT is itself unsafe (never stat'ed,
never entered), and folders are deleted by `remove_tree` (GNU rm: iterative, no link
followed), not shutil.rmtree, which recurses (1,000 nested folders raise RecursionError).
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..config import Limits

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
PATH_LIMIT = 2048  # bytes: a longer path is unsafe; with a 255-byte name below it, any path stays under PATH_MAX
TOO_LONG = "path too long"


def entry_kind(st: os.stat_result) -> str | None:
    """Why an lstat result is unsafe to read ("symlink", "hard link", …), or None for a plain file or folder."""
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    if stat.S_ISDIR(st.st_mode):
        return None
    if not stat.S_ISREG(st.st_mode):
        return {stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket", stat.S_IFCHR: "device", stat.S_IFBLK: "device"}.get(
            stat.S_IFMT(st.st_mode), "special file")
    return "hard link" if st.st_nlink > 1 else None


def unsafe_entries(root: Path) -> list[tuple[str, str]]:
    """(path relative to root's parent, kind) of every unsafe entry at or below root; links are not followed."""
    root = Path(root)
    try:
        kind = entry_kind(os.lstat(root))
    except FileNotFoundError:
        return []
    if kind:
        return [(root.name, kind)]
    if not root.is_dir():
        return []
    found, stack = [], [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if len(os.fsencode(entry.path)) > PATH_LIMIT:
                    kind = TOO_LONG
                else:
                    kind = entry_kind(entry.stat(follow_symlinks=False))
                if kind:
                    found.append((str(Path(entry.path).relative_to(root.parent)), kind))
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
    return sorted(found)


def remove_unsafe(root: Path) -> list[tuple[str, str]]:
    """Remove every unsafe entry below root (the entry itself, never what it points to); return them."""
    found = unsafe_entries(root)
    for relative, _ in found:
        remove_tree(Path(root).parent / relative)
    return found


def remove_tree(path: Path) -> None:
    """Remove a file or folder of any depth and path length without following a link; never raises."""
    try:
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=600)
    except (OSError, subprocess.SubprocessError):
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def temporary_folder(prefix: str):
    """tempfile.TemporaryDirectory, removed with remove_tree whatever a sandboxed process left in it."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        remove_tree(folder)


def regular_files(root: Path):
    """(path, size) of every plain file at or below root, links, special files and over-long paths left out."""
    stack = [Path(root)] if Path(root).is_dir() and not Path(root).is_symlink() else []
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if len(os.fsencode(entry.path)) > PATH_LIMIT:
                    continue
                st = entry.stat(follow_symlinks=False)
                if entry_kind(st):
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(Path(entry.path))
                else:
                    yield Path(entry.path), st.st_size


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of a plain file, refusing links and special files; OSError if it is not one, ValueError if too big."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if entry_kind(st) or not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path.name} is a {entry_kind(st) or 'folder'}")
        if st.st_size > max_bytes:
            raise ValueError(f"{path.name} is {st.st_size >> 20} MB (at most {max_bytes >> 20} MB)")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(max_bytes + 1)
    finally:
        os.close(fd)


def copy_regular_tree(source: Path, dest: Path) -> None:
    """Copy plain files and folders only (links, special files and paths over PATH_LIMIT are left out)."""
    stack = [(Path(source), Path(dest))]
    while stack:
        src, dst = stack.pop()
        dst.mkdir(parents=True, exist_ok=True)
        with os.scandir(src) as entries:
            for entry in entries:
                if max(len(os.fsencode(entry.path)), len(os.fsencode(dst / entry.name))) > PATH_LIMIT:
                    continue
                st = entry.stat(follow_symlinks=False)
                if entry_kind(st):
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append((Path(entry.path), dst / entry.name))
                else:
                    shutil.copyfile(entry.path, dst / entry.name, follow_symlinks=False)


ADAPTER_CONFIG_MAX_BYTES = 64 << 10


def adapter_over_limits(source: Path, limits: Limits) -> str | None:
    """Why a saved LoRA adapter is too large to load (course.toml [limits]), read before anything loads it: its
    config's r and target_modules, and the size of its weights; None when it is within them or is not there."""
    try:
        config = json.loads(read_regular(Path(source) / ADAPTER_FILES[0], ADAPTER_CONFIG_MAX_BYTES))
        size = os.lstat(Path(source) / ADAPTER_FILES[1]).st_size
    except (OSError, ValueError):
        return None  # missing or unreadable: the checks name that
    rank, targets = (config.get("r"), config.get("target_modules")) if isinstance(config, dict) else (None, None)
    if isinstance(rank, int) and not 0 < rank <= limits.adapter_max_rank:
        return f"r = {rank} (at most {limits.adapter_max_rank})"
    if isinstance(targets, list) and (len(targets) > 64 or any(len(str(t)) > 200 for t in targets)):
        return f"target_modules: {len(targets)} names (at most 64, of 200 characters)"
    if size > limits.adapter_max_mb << 20:
        return f"{ADAPTER_FILES[1]}: {size >> 20} MB (at most {limits.adapter_max_mb} MB)"
    return None


def copy_adapter(source: Path, dest: Path, limits: Limits) -> Path | None:
    """A LoRA adapter's config and safetensors weights, copied as plain files; None if either is missing or unsafe,
    or the adapter is over the course's limits."""
    if adapter_over_limits(source, limits):
        return None
    dest.mkdir(parents=True, exist_ok=True)
    for name in ADAPTER_FILES:
        try:
            (dest / name).write_bytes(read_regular(Path(source) / name, 4 << 30))
        except (OSError, ValueError):
            shutil.rmtree(dest, ignore_errors=True)
            return None
    return dest
