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


def main(argv: list) -> None:
    spec_file, sep, *command = argv
    if sep != "--" or not command:
        sys.exit("usage: launch.py SPEC.json -- COMMAND...")
    with open(spec_file, encoding="utf-8") as fh:
        spec = json.load(fh)
    inside = list(spec["inside"])
    if os.geteuid() == 0:
        uid = UID_BASE + os.getpid()
        hand_over(spec["hand_over"], uid)
        inside += ["--uid", str(uid)]
    set_limits(spec["limits"])
    os.execv(spec["bwrap"], ["bwrap", *spec["args"], "--", *inside, "--", *command])


if __name__ == "__main__":
    main(sys.argv[1:])
