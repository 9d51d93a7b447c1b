"""Submissions, and everything a kernel wrote, are untrusted files.

The grader follows no link in them and reads no FIFO or device: a symlink, hard link,
FIFO, socket or device node is found with lstat (never followed), reported, and
removed from a work folder before anything reads it. The grader unpickles nothing:
of a LoRA adapter it reads only adapter_config.json and adapter_model.safetensors.
"""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


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
    found, stack = [], [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
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
        path = Path(root).parent / relative
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return found


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
    """Copy plain files and folders only (links and special files are left out)."""
    dest.mkdir(parents=True, exist_ok=True)
    with os.scandir(source) as entries:
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            if entry_kind(st):
                continue
            if stat.S_ISDIR(st.st_mode):
                copy_regular_tree(Path(entry.path), dest / entry.name)
            else:
                shutil.copyfile(entry.path, dest / entry.name, follow_symlinks=False)


def copy_adapter(source: Path, dest: Path) -> Path | None:
    """A LoRA adapter's config and safetensors weights, copied as plain files; None if either is missing or unsafe."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ADAPTER_FILES:
        try:
            (dest / name).write_bytes(read_regular(Path(source) / name, 4 << 30))
        except (OSError, ValueError):
            shutil.rmtree(dest, ignore_errors=True)
            return None
    return dest
