"""Starts the private container engine for you: `tools/bazel run //tools/oci:engine`, then use the DOCKER_HOST it prints.

The same dockerd the structure tests start (tools/oci/structure_test.py: root, no bridge, no iptables, its own
data root), but it lasts until you stop it (Ctrl-C), and its socket (engine.sock) is in a directory the machine shares
with the build root (beside Bazel's output bases; its state stays in the build root's /tmp), so the machine's docker CLI and every tools/bazel command reach
it: `DOCKER_HOST=unix://... tools/bazel run //python:3.13_load`, `docker build`, `_run -- --publish 8080`.
Containers get the machine's network only when asked (`docker run --network=host`, which `--publish` uses for
it); the default bridge is off, so `docker run -p` publishes nothing there.
Its images and containers go when it stops.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from tools import cli
from tools.oci.structure_test import EngineError, private_engine


def shared_directory(start: Path) -> Path:
    """The output user root (bound from the machine into the build root): the output base is inside it."""
    for directory in (start, *start.parents):
        if directory.name == "execroot":
            return directory.parent.parent
    raise EngineError(f"{start} is not in a Bazel output base; run this with `tools/bazel run //tools/oci:engine`")


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@cli.tool("engine", EngineError)
def main(argv: list[str] | None = None) -> int:
    socket = shared_directory(Path.cwd().absolute()) / "engine.sock"
    if socket.exists():
        raise EngineError(f"{socket} exists: another `tools/bazel run //tools/oci:engine` is running (use its DOCKER_HOST), "
                          "or one was killed: remove the file and start again")
    signal.signal(signal.SIGTERM, _stop)
    with private_engine(socket=socket) as docker_host:
        print(f"engine: running; in another terminal:\n  export DOCKER_HOST={docker_host}\n"
              "engine: Ctrl-C stops it (and removes its images and containers)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("engine: stopping", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
