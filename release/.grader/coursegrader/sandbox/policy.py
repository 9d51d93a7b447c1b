"""What one sandbox sees and may use, turned into bubblewrap arguments.

Inside, student code sees a read-only runtime (system libraries, this Python and its
packages, the profile's model and data), its own work folder read-write, a private
/tmp, a private /proc and a minimal /dev. It does not see the repository, the
gradebook, other exercises or students, or the grader's HOME. Paths are bound at
the same absolute paths as outside, so environment variables mean the same inside.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import REPO_ROOT, Course

INSIDE_SCRIPT = Path(__file__).with_name("inside.py")
INSIDE_DEST = "/run/course-sandbox/inside.py"  # where inside.py appears in the sandbox
# /etc entries the runtime needs (loader cache, certificates, users, time zone, alternatives).
ETC_ENTRIES = ("alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "ssl", "ca-certificates",
               "ca-certificates.conf", "passwd", "group", "nsswitch.conf", "hosts", "host.conf", "localtime",
               "timezone", "mime.types", "fonts", "mecabrc")
ROOT_LINKS = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")
GPU_DEVICES = ("/dev/nvidia*", "/dev/nvidia-caps/*", "/dev/dri/*")


@dataclass(frozen=True)
class Limits:
    """Per-sandbox limits (course.toml [sandbox])."""
    memory_mb: int  # per process: RLIMIT_DATA (heap and private mappings)
    processes: int  # processes and threads inside one sandbox: RLIMIT_NPROC
    file_size_mb: int  # largest file a sandboxed process may write: RLIMIT_FSIZE
    tmp_size_mb: int  # the private /tmp (a tmpfs)

    @classmethod
    def from_course(cls, course: Course) -> "Limits":
        spec = course.sandbox
        return cls(**{k: int(spec[k]) for k in cls.__dataclass_fields__})


@dataclass
class SandboxPolicy:
    work_dir: Path  # the working directory, read-write
    limits: Limits
    writable: list[Path] = field(default_factory=list)  # more read-write folders (HOME, the kernel's runtime dir)
    readable: list[Path] = field(default_factory=list)  # model, data, adapter: read-only
    forward: tuple[int, Path] | None = None  # 127.0.0.1:port inside -> this Unix socket of the grader (bound read-only)
    work_source: Path | None = None  # the host folder bound at work_dir, if not work_dir itself

    def bwrap_args(self) -> list[str]:
        """bubblewrap's options (everything before `--`)."""
        args = ["--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid", "--unshare-uts",
                "--unshare-net", "--unshare-cgroup-try", "--hostname", "localhost", "--cap-drop", "ALL"]  # a name /etc/hosts resolves (the JVM asks)
        if os.geteuid() == 0:  # inside.py switches to a private uid, which needs these two, then drops them
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            args += ["--unshare-user", "--disable-userns"]
        args += ["--proc", "/proc", "--dev", "/dev", "--size", str(self.limits.tmp_size_mb << 20),
                 "--perms", "1777", "--tmpfs", "/tmp"]  # writable by the sandbox's uid (the JVM's temp files)
        for name in ROOT_LINKS:
            path = Path("/") / name
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), str(path)]
        binds = [("--ro-bind", p) for p in runtime_paths() + [Path(p) for p in self.readable]]
        binds += [("--ro-bind", Path(self.forward[1]))] if self.forward else []
        binds += [("--bind", Path(self.work_dir))]
        binds += [("--bind", Path(p)) for p in self.writable]
        binds += [("--dev-bind", Path(p)) for p in gpu_devices()]
        made = {"/", "/tmp", "/proc", "/dev"}
        for option, path in binds:
            for parent in reversed(path.parents):
                if str(parent) not in made and not str(parent).startswith(("/dev/", "/proc/")):
                    args += ["--perms", "0755", "--dir", str(parent)]
                    made.add(str(parent))
            source = self.work_source if path == Path(self.work_dir) and self.work_source else path
            args += [option, str(source), str(path)]
        for secret in hf_secrets():  # HF_HOME is readable inside; a token saved there is not
            args += ["--dev-bind", "/dev/null", str(secret)]  # binds are nodev: only this reads as empty
        args += ["--ro-bind", str(INSIDE_SCRIPT), INSIDE_DEST, "--chdir", str(self.work_dir)]
        return args

    def launch_spec(self) -> dict:
        """What launch.py needs: the whole command line but the target, the limits, the folders to hand over."""
        inside = [sys.executable, "-I", "-S", INSIDE_DEST]
        if self.forward:
            inside += ["--forward", f"{self.forward[0]}:{self.forward[1]}"]
        return {"bwrap": bwrap_path(), "args": self.bwrap_args(), "inside": inside,
                "hand_over": [str(self.work_source or self.work_dir)] + [str(p) for p in self.writable],
                "limits": asdict(self.limits)}

    def write(self, path: Path) -> Path:
        Path(path).write_text(json.dumps(self.launch_spec(), indent=1), encoding="utf-8")
        return Path(path)


def bwrap_path() -> str:
    return shutil.which("bwrap") or ""


def runtime_paths() -> list[Path]:
    """The read-only runtime: system libraries, this interpreter and its environment."""
    paths = [Path("/usr")]
    for name in ROOT_LINKS:
        path = Path("/") / name
        if path.is_dir() and not path.is_symlink():
            paths.append(path)
    paths += [Path("/etc") / e for e in ETC_ENTRIES if (Path("/etc") / e).exists()]
    paths += sorted(Path(p) for p in glob.glob("/etc/java-*"))  # the JVM's security and logging files (Spark)
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        for p in {Path(prefix), Path(prefix).resolve()}:
            if not _covered(p, paths) and not _inside_repo_but_not_env(p):
                paths.append(p)
    hf_home = os.environ.get("HF_HOME")
    if hf_home and Path(hf_home).is_dir():  # the gpu profile's prefetched model and dataset
        paths.append(Path(hf_home))
    return paths


def hf_secrets() -> list[Path]:
    """The tokens `hf auth login` saves in HF_HOME (bound into every sandbox): each is hidden behind an
    empty file there, so a kernel sees no token and the Hugging Face libraries find none."""
    hf_home = os.environ.get("HF_HOME")
    found = [Path(hf_home) / name for name in ("token", "stored_tokens")] if hf_home else []
    return [p for p in found if p.is_file()]


def profile_paths(profile) -> list[Path]:
    """A profile's model, dataset and BERTScore encoder where they are files (Hub ids live under HF_HOME).
    Not its reference adapter: only ex06, which evaluates it, gets that (as the adapter it is given)."""
    values = (profile.model_id, profile.dataset, profile.bertscore_model)
    found = []
    for value in values:
        path = Path(profile.resolve(value)) if value else None
        if path and path.is_absolute() and path.exists() and not _covered(path, runtime_paths()):
            found.append(path)
    return found


def gpu_devices() -> list[str]:
    return sorted(p for pattern in GPU_DEVICES for p in glob.glob(pattern) if not os.path.isdir(p))


def _covered(path: Path, paths: list[Path]) -> bool:
    return any(path == p or p in path.parents for p in paths)


def _inside_repo_but_not_env(path: Path) -> bool:
    """The checkout itself is never bound, only a virtual environment inside it."""
    return path == REPO_ROOT or (REPO_ROOT in path.parents and not (path / "pyvenv.cfg").exists())
