"""A graded submission's MLflow store, kept for TAs: copied out of the work dir, then opened in the MLflow UI.

MLflow's SQLite store records absolute artifact paths, so the copy rewrites them to
its new folder (every text column of every table, prefix replaced).
"""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from .config import load_course

STORE_DIR = "mlflow"  # under <out>/<exercise>/


def tracking_db(work_dir: Path) -> Path:
    return Path(work_dir) / load_course().mlflow.tracking_uri.removeprefix("sqlite:///")


def keep_store(work_dir: Path, dest: Path) -> Path | None:
    """Copy the store (database and mlruns/) from a grading work dir into dest; None if there is none."""
    from .grading.untrusted import copy_regular_tree, read_regular

    db = tracking_db(work_dir)
    try:
        data = read_regular(db, 1 << 30)  # untrusted: never through a link
    except (OSError, ValueError):
        return None
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    (dest / db.name).write_bytes(data)
    if (db.parent / "mlruns").is_dir() and not (db.parent / "mlruns").is_symlink():
        copy_regular_tree(db.parent / "mlruns", dest / "mlruns")
    _rewrite_paths(dest / db.name, str(db.parent.resolve()), str(dest.resolve()))
    return dest / db.name


def _rewrite_paths(db: Path, old: str, new: str) -> None:
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for _, column, kind, *_ in conn.execute(f'PRAGMA table_info("{table}")').fetchall():
                if kind.upper() in ("TEXT", "VARCHAR") or kind.upper().startswith("VARCHAR"):
                    conn.execute(f'UPDATE "{table}" SET "{column}" = REPLACE("{column}", ?, ?) WHERE "{column}" LIKE ?',
                                 (old, new, f"%{old}%"))


def ui_command(graded_student_dir: Path, port: int) -> list[str]:
    """`mlflow ui` on a graded student's kept store, bound to localhost only."""
    dbs = sorted(Path(graded_student_dir).glob(f"*/{STORE_DIR}/*.db"))
    if not dbs:
        raise FileNotFoundError(f"no MLflow store under {graded_student_dir}/*/{STORE_DIR}/ (was ex06 graded with --out?)")
    db = dbs[0].resolve()
    return ["mlflow", "ui", "--backend-store-uri", f"sqlite:///{db}", "--host", "127.0.0.1", "--port", str(port)]
