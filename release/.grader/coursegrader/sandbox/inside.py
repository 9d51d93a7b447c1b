"""The first process inside the sandbox (stdlib only; bound read-only at /run/course-sandbox).

    python -I -S inside.py [--uid N] [--forward PORT:SOCKET] -- COMMAND...

--uid: when the grader is root, give up root for the sandbox's private uid (and with it
the two capabilities bubblewrap kept for this). --forward: the sandbox has no network
but its own loopback; accept 127.0.0.1:PORT there and relay each connection to the
grader's fixture server on a Unix socket. Then run COMMAND and exit with its status.
"""
import os
import socket
import subprocess
import sys
import threading


def drop_root(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    os.environ["USER"] = os.environ["LOGNAME"] = "student"


def relay(source: socket.socket, dest: socket.socket, done: threading.Semaphore) -> None:
    try:
        while data := source.recv(65536):
            dest.sendall(data)
        dest.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    if not done.acquire(blocking=False):  # the second direction to finish closes both
        source.close()
        dest.close()


def forward(port: int, path: str) -> None:
    listener = socket.create_server(("127.0.0.1", port))

    def serve() -> None:
        while True:
            client, _ = listener.accept()
            upstream = socket.socket(socket.AF_UNIX)
            try:
                upstream.connect(path)
            except OSError:
                client.close()
                continue
            done = threading.Semaphore(1)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=relay, args=(a, b, done), daemon=True).start()

    threading.Thread(target=serve, name="fixture-forward", daemon=True).start()


def main(argv: list) -> int:
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    uid = forward_to = None
    for name, value in zip(options[::2], options[1::2]):
        if name == "--uid":
            uid = int(value)
        elif name == "--forward":
            port, _, path = value.partition(":")
            forward_to = (int(port), path)
    if uid is not None:
        drop_root(uid)
    os.umask(0o022)
    if forward_to:
        forward(*forward_to)
    # Its own process group: ipykernel interrupts a cell by signalling its group, which must not include us.
    return subprocess.Popen(command, process_group=0).wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
