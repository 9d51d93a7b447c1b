"""The trusted step between the grader and bubblewrap (stdlib only; run as a script).

    python -I launch.py SPEC.json -- COMMAND...

Sets the sandbox's limits, hands the read-write folders to the sandbox's uid (when the
grader is root, each sandbox gets a private uid: 100000 + this pid, unique while it runs,
so the process limit counts only this sandbox), then becomes bubblewrap. The pid stays
the same, so whoever started this process holds bubblewrap, and --die-with-parent ties
the sandbox to it.
"""
import json
import os
import resource
import sys

UID_BASE = 100000


def set_limits(limits: dict) -> None:
    mb = 1 << 20
    for kind, value in ((resource.RLIMIT_DATA, limits["memory_mb"] * mb), (resource.RLIMIT_NPROC, limits["processes"]),
                        (resource.RLIMIT_FSIZE, limits["file_size_mb"] * mb), (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(kind, (value, value))


def hand_over(folders: list, uid: int) -> None:
    """The folders and everything in them (the kernel's connection file, a copied store) to uid; links untouched."""
    for folder in folders:
        os.chown(folder, uid, uid, follow_symlinks=False)
        for parent, dirs, files in os.walk(folder):
            for name in dirs + files:
                os.chown(os.path.join(parent, name), uid, uid, follow_symlinks=False)


def named(uid: int) -> list:
    """bubblewrap options giving the sandbox's uid a name, home and group in its /etc/passwd and /etc/group:
    the JVM (Spark's Hadoop login) and getpass ask who they run as. The files are memfds, gone with bubblewrap."""
    args = []
    for path, entry in (("/etc/passwd", f"student:x:{uid}:{uid}:student:{os.environ.get('HOME', '/')}:/usr/sbin/nologin"),
                        ("/etc/group", f"student:x:{uid}:")):
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError:
            text = ""
        fd = os.memfd_create(os.path.basename(path), 0)  # no MFD_CLOEXEC: bubblewrap reads it
        os.write(fd, (text.rstrip("\n") + "\n" + entry + "\n").lstrip("\n").encode())
        os.lseek(fd, 0, os.SEEK_SET)
        os.set_inheritable(fd, True)
        args += ["--perms", "0644", "--ro-bind-data", str(fd), path]
    return args


def main(argv: list) -> None:
    spec_file, sep, *command = argv
    if sep != "--" or not command:
        sys.exit("usage: launch.py SPEC.json -- COMMAND...")
    with open(spec_file, encoding="utf-8") as fh:
        spec = json.load(fh)
    inside, args = list(spec["inside"]), list(spec["args"])
    if os.geteuid() == 0:
        uid = UID_BASE + os.getpid()
        hand_over(spec["hand_over"], uid)
        inside += ["--uid", str(uid)]
        args += named(uid)
    set_limits(spec["limits"])
    os.execv(spec["bwrap"], ["bwrap", *args, "--", *inside, "--", *command])


if __name__ == "__main__":
    main(sys.argv[1:])
