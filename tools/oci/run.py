"""`bazel run` of an image: loads it into a container engine and runs it, arguments and exit status passed through.

    tools/bazel run //python:3.13_run -- -c 'print(1)'
    tools/bazel run //examples/hello_service:hello_service_run -- --port 9000

The engine is the one DOCKER_HOST names (it must answer), else the private dockerd the structure tests use
(tools/oci/structure_test.py: started as root in the build root, no bridge, no iptables; an image of another
architecture runs under qemu registered in the engine's own namespace), started for this run and stopped
after it. Containers of the private engine have no network (`--network=none`, as in the tests): a server
runs, but nothing outside reaches it; to serve requests, start a lasting engine (`tools/bazel run
//tools/oci:engine`), load the image with its `_load` target and `docker run -p` it there.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from tools import cli
from tools.image.chroot import EmulatorError, machine_architecture
from tools.oci.binfmt_namespace import NamespaceError
from tools.oci.layout import Layout, LayoutError
from tools.oci.structure_test import EngineError, check_named_engine, emulation_for, private_engine

NO_ENGINE = ("no container engine: DOCKER_HOST is not set and a private engine needs root and dockerd (both are "
             "in tools/bazel's build root: run this with tools/bazel as root), or set DOCKER_HOST to a running engine; "
             "`tools/bazel run //tools/oci:engine` starts one and prints its DOCKER_HOST")


@contextlib.contextmanager
def engine(architecture: str, scratch: Path) -> Iterator[tuple[str, bool]]:
    """(DOCKER_HOST, whether it is the private engine) for the run."""
    named = os.environ.get("DOCKER_HOST", "")
    if named:
        check_named_engine(named)
        yield named, False
        return
    if os.geteuid() != 0:
        raise EngineError(NO_ENGINE)
    emulation = None
    if machine_architecture() != architecture:
        emulation, refusal = emulation_for(architecture, scratch)
        if emulation is None:
            raise EngineError(f"this kernel cannot run linux/{architecture} images in the private engine ({refusal}); "
                              "run the image of this machine's architecture, or set DOCKER_HOST to an engine that can")
    print(f"run: starting a private engine for this run{' (linux/' + architecture + ' under qemu)' if emulation else ''}",
          file=sys.stderr, flush=True)
    with private_engine(emulation) as docker_host:
        yield docker_host, True


def run(archive: Path, layout: Path, tag: str, arguments: list[str], scratch: Path) -> int:
    platform = Layout(layout).single_image().platform
    with engine(platform.architecture, scratch) as (docker_host, private):
        environment = {**os.environ, "DOCKER_HOST": docker_host}
        loaded = subprocess.run(["docker", "load", "--quiet", "--input", str(archive)], env=environment,
                                capture_output=True, text=True, check=False)
        if loaded.returncode != 0:
            raise EngineError(f"docker load of {archive.name} into {docker_host} failed: {loaded.stderr.strip()}")
        interactive = ["--interactive"] + (["--tty"] if sys.stdin.isatty() and sys.stdout.isatty() else [])
        network = ["--network=none"] if private else []
        command = ["docker", "run", "--rm", *interactive, *network, f"--platform={platform}", tag, *arguments]
        return subprocess.run(command, env=environment, check=False).returncode


def _exit_on_signal(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so the private engine and its container are stopped."""
    raise SystemExit(128 + signum)


@cli.tool("run", EngineError, LayoutError, EmulatorError, NamespaceError, OSError)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, required=True, help="the image as a docker-archive (oci_load's tar)")
    parser.add_argument("--layout", type=Path, required=True, help="the image's OCI layout, for its platform")
    parser.add_argument("--tag", required=True, help="the name it is loaded and run as")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the container's arguments")
    args = parser.parse_args(argv)
    # The launcher puts `--` before the user's arguments, so none of them is taken for one of ours.
    arguments = args.arguments[1:] if args.arguments[:1] == ["--"] else args.arguments
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with tempfile.TemporaryDirectory(prefix="image-run-") as scratch:
        return run(args.archive, args.layout, args.tag, arguments, Path(scratch))


if __name__ == "__main__":
    raise SystemExit(main())
