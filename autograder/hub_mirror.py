"""mirror: the course's Hub repositories as plain folders, for workspaces that cannot reach Hugging Face.

`python -m autograder prefetch --profile gpu` (with HF_TOKEN: Gemma is gated) fills the Hub cache; then
`python -m autograder mirror DEST` lays out each of the profile's repositories (the model, the dataset, the
BERTScore encoder) as DEST/<repo id>/, the files of the cached snapshot with no symbolic links, and writes
DEST/MIRROR.json (which repository, which revision, when). Copy DEST to a Unity Catalog Volume or workspace
files, put that path in course.toml's [hub_mirror] root and release: the notebooks' profile cells then load
<root>/<repo id> with the same transformers and datasets calls. Nothing is downloaded here.
"""
from __future__ import annotations

import datetime as _dt
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from coursegrader.config import Profile

MANIFEST = "MIRROR.json"


class MirrorError(RuntimeError):
    """A repository is not in the Hub cache, or the destination cannot take it."""


@dataclass(frozen=True)
class Mirrored:
    repo_id: str
    kind: str       # "model" or "dataset"
    revision: str   # the cached snapshot's commit
    files: int
    size_bytes: int


def _snapshot(repo_id: str, kind: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, repo_type=kind, local_files_only=True))
    except LocalEntryNotFoundError as err:
        raise MirrorError(f"{kind} {repo_id} is not in the Hub cache (HF_HOME): run "
                          f"`python -m autograder prefetch --profile gpu` first, with HF_TOKEN") from err


def mirror(profile: Profile, dest: Path) -> list[Mirrored]:
    """Copy the profile's cached Hub repositories to dest/<repo id>/ (files, not links), and the manifest."""
    dest = Path(dest)
    wanted = profile.hub_ids
    if not wanted:
        raise MirrorError(f"profile {profile.name} names no Hub repository (its model and data are in the repository)")
    snapshots = [(repo_id, kind, _snapshot(repo_id, kind)) for repo_id, kind in wanted]  # all found before any copy
    done = []
    for repo_id, kind, snapshot in snapshots:
        target = dest / repo_id
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(snapshot, target, symlinks=False)  # the cache's links point into blobs/: copy what they name
        files = [p for p in target.rglob("*") if p.is_file()]
        done.append(Mirrored(repo_id, kind, snapshot.name, len(files), sum(p.stat().st_size for p in files)))
    manifest = {"profile": profile.name, "made_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "repositories": [asdict(m) for m in done]}
    (dest / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return done
