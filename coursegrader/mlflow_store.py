"""A graded submission's MLflow store, kept for TAs: copied out of the work dir, then opened in the MLflow UI.

MLflow's SQLite store records absolute artifact paths, so the copy rewrites them to
its new folder (every text column of every table, prefix replaced).
"""
from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

from .config import Course, MlflowSettings

STORE_DIR = "mlflow"  # under <out>/<exercise>/


def tracking_db(work_dir: Path, mlflow: MlflowSettings) -> Path:
    """The student's tracking database in a work folder (course.toml [mlflow] tracking_uri, relative to it)."""
    return Path(work_dir) / mlflow.tracking_uri.removeprefix("sqlite:///")


class StoreUnusable(Exception):
    """The student's store cannot be opened safely: not SQLite, damaged, or too slow to clean."""


def distrust_store(db: Path, budget_s: float) -> None:
    """Make the student's SQLite store safe to open in the grader, in place, once the kernel is done: a plain
    SQLite file whose triggers are dropped (a trigger runs inside whatever process writes the table, e.g. the
    grader rewriting paths, with no limit). Raises StoreUnusable; all of it within budget_s (course.toml
    [limits] store_budget_s)."""
    with _connect(db, budget_s) as conn:
        try:
            if conn.execute("PRAGMA quick_check(1)").fetchone() != ("ok",):
                raise StoreUnusable("damaged (PRAGMA quick_check)")
            triggers = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
            for name in triggers:
                conn.execute(f'DROP TRIGGER IF EXISTS "{name.replace(chr(34), chr(34) * 2)}"')
            conn.commit()
        except sqlite3.Error as err:
            raise StoreUnusable(f"{type(err).__name__}: {err}") from None


class _connect:
    """sqlite3.connect with a deadline (store_budget_s), no extension, and the schema's functions untrusted."""

    def __init__(self, db: Path, budget_s: float):
        self.db, self.budget_s = Path(db), budget_s

    def __enter__(self) -> sqlite3.Connection:
        deadline = time.monotonic() + self.budget_s
        try:
            self.conn = sqlite3.connect(self.db, timeout=0)
            self.conn.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
            self.conn.execute("PRAGMA trusted_schema = OFF")
        except sqlite3.Error as err:
            raise StoreUnusable(f"{type(err).__name__}: {err}") from None
        return self.conn

    def __exit__(self, *exc) -> None:
        self.conn.close()


def store_bytes(work_dir: Path, mlflow: MlflowSettings) -> int:
    """What keep_store would copy: the database and mlruns/, in bytes (links and special files left out)."""
    from .grading.untrusted import regular_files

    db = tracking_db(work_dir, mlflow)
    return sum(size for _, size in regular_files(db.parent / "mlruns")) + (db.stat().st_size if db.is_file() else 0)


def keep_store(work_dir: Path, dest: Path, course: Course) -> Path | None:
    """Copy the store (database and mlruns/) from a grading work dir into dest; None if there is none, it is not
    a usable SQLite store, or it is larger than kept_store_mb (nothing is kept then)."""
    from .grading.untrusted import copy_regular_tree, read_regular

    db, budget_s = tracking_db(work_dir, course.mlflow), course.limits.store_budget_s
    try:
        if store_bytes(work_dir, course.mlflow) > course.limits.kept_store_bytes:
            return None
        data = read_regular(db, course.limits.kept_store_bytes)  # untrusted: never through a link
    except (OSError, ValueError):
        return None
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    (dest / db.name).write_bytes(data)
    if (db.parent / "mlruns").is_dir() and not (db.parent / "mlruns").is_symlink():
        copy_regular_tree(db.parent / "mlruns", dest / "mlruns")
    try:
        distrust_store(dest / db.name, budget_s)
        _rewrite_paths(dest / db.name, str(db.parent.resolve()), str(dest.resolve()), budget_s)
    except StoreUnusable:
        shutil.rmtree(dest, ignore_errors=True)
        return None
    return dest / db.name


def _rewrite_paths(db: Path, old: str, new: str, budget_s: float) -> None:
    with _connect(db, budget_s) as conn:
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                quoted = table.replace('"', '""')
                for _, column, kind, *_ in conn.execute(f'PRAGMA table_info("{quoted}")').fetchall():
                    if kind.upper() in ("TEXT", "VARCHAR") or kind.upper().startswith("VARCHAR"):
                        col = column.replace('"', '""')
                        conn.execute(f'UPDATE "{quoted}" SET "{col}" = REPLACE("{col}", ?, ?) WHERE "{col}" LIKE ?',
                                     (old, new, f"%{old}%"))
            conn.commit()
        except sqlite3.Error as err:
            raise StoreUnusable(f"{type(err).__name__}: {err}") from None


def ui_command(graded_student_dir: Path, port: int) -> list[str]:
    """`mlflow ui` on a graded student's kept store, bound to localhost only."""
    dbs = sorted(Path(graded_student_dir).glob(f"*/{STORE_DIR}/*.db"))
    if not dbs:
        raise FileNotFoundError(f"no MLflow store under {graded_student_dir}/*/{STORE_DIR}/ (was ex06 graded with --out?)")
    db = dbs[0].resolve()
    return ["mlflow", "ui", "--backend-store-uri", f"sqlite:///{db}", "--host", "127.0.0.1", "--port", str(port)]
