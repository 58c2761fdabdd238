"""`bazel run` of an image: loads it into a container engine and runs it, arguments and exit status passed through.

    tools/bazel run //python:3.13_run -- -c 'print(1)'
    tools/bazel run //examples/hello_service:hello_service_run -- --publish 8080 -- --port 8080

The engine is the one DOCKER_HOST names (it must answer), else the private dockerd the structure tests use
(tools/oci/structure_test.py: started as root in the build root, no bridge, no iptables; an image of another
architecture runs under qemu registered in the engine's own namespace), started for this run and stopped
after it.

The run's own options come first and end at the first argument that is not one of them, or at a `--`
(dropped); the rest are the container's. `--publish PORT` (`-p`, repeatable; `HOST_PORT:CONTAINER_PORT` too)
makes a server in the container reachable on the machine's 127.0.0.1:PORT: DOCKER_HOST's engine publishes it
(`docker run -p 127.0.0.1:HOST_PORT:CONTAINER_PORT`) when it has a bridge network; in the private engine, and
in one on this machine without a bridge (as //tools/oci:engine's), the container shares the machine's
network (`--network=host`; the build root has the machine's), so the port is the container's own and the two
must be equal. An image of another architecture runs in the private engine's own network namespace (its
binfmt_misc namespace): the container shares that one, and this process relays each connection to the
machine's 127.0.0.1:HOST_PORT to 127.0.0.1:CONTAINER_PORT there. Without `--publish` the private engine's
containers have no network (`--network=none`, as in the tests).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tools import cli
from tools.image.chroot import EmulatorError, machine_architecture
from tools.oci.binfmt_namespace import NamespaceError
from tools.oci.layout import Layout, LayoutError
from tools.oci.structure_test import EngineError, check_named_engine, emulation_for, private_engine

CLONE_NEWNET = 0x40000000


class RunOptionError(Exception):
    """A run option (--publish) that is malformed or cannot be had with this engine; the message says what to do."""


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


@dataclass(frozen=True)
class Publish:
    """A port of the container made reachable on the machine's loopback."""
    host: int
    container: int


def parse_port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise RunOptionError(f"--publish {text}: not a port number (1 to 65535)")
    return int(text)


def parse_publish(value: str) -> Publish:
    host, _, container = value.rpartition(":") if ":" in value else (value, "", value)
    return Publish(parse_port(host), parse_port(container))


def split_arguments(arguments: list[str]) -> tuple[list[Publish], list[str]]:
    """The run's own options (leading `--publish`/`-p`, up to a `--` or the first other argument), and the container's."""
    published: list[Publish] = []
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if argument == "--":
            return published, arguments[index + 1:]
        if argument in ("--publish", "-p"):
            if index + 1 == len(arguments):
                raise RunOptionError(f"{argument} needs a port: {argument} 8080 (or HOST_PORT:CONTAINER_PORT)")
            published.append(parse_publish(arguments[index + 1]))
            index += 2
        elif argument.startswith("--publish="):
            published.append(parse_publish(argument.removeprefix("--publish=")))
            index += 1
        else:
            break
    return published, arguments[index:]


def network_options(published: list[Publish], private: bool, emulated: bool, bridge: bool = True,
                    docker_host: str = "") -> list[str]:
    """`docker run` options that make `published` reachable on the machine's loopback (none: no network, privately).

    `bridge`: whether DOCKER_HOST's engine has a bridge network to publish ports from (the private one, and the
    lasting one //tools/oci:engine starts, have none: their containers share the machine's network instead).
    """
    if not published:
        return [] if not private else ["--network=none"]
    if not private and bridge:
        return [f"--publish=127.0.0.1:{port.host}:{port.container}" for port in published]
    if not private and not docker_host.startswith("unix://"):
        raise RunOptionError(f"--publish: the engine DOCKER_HOST={docker_host} names has no bridge network to publish "
                             "ports from, and it is not on this machine; give it one, or use an engine on this machine")
    unequal = [port for port in published if port.host != port.container]
    if unequal and not emulated:
        raise RunOptionError(f"--publish {unequal[0].host}:{unequal[0].container}: in this engine (no bridge network) the "
                             "container shares the machine's network, so its port is the machine's; publish one port "
                             f"(--publish {unequal[0].container}), or use an engine with a bridge network")
    # Emulated in the private engine: its own network namespace, whose loopback forward() connects the machine's
    # ports to.
    return ["--network=host"]


def has_bridge(environment: dict[str, str]) -> bool:
    """Whether the engine has docker's default bridge network (dockerd --bridge=none, as ours run, has none)."""
    return subprocess.run(["docker", "network", "inspect", "bridge"], env=environment, capture_output=True,
                          check=False).returncode == 0


def _enter_network_namespace(path: Path) -> None:
    """Moves the calling thread into the network namespace at `path` (its sockets are created there after)."""
    with open(path, "rb") as namespace:
        if hasattr(os, "setns"):
            os.setns(namespace.fileno(), os.CLONE_NEWNET)
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(namespace.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({path})")


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def stop_forwarding(listeners: list[socket.socket]) -> None:
    for listener in listeners:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept(), which close() alone does not
        listener.close()


def forward(published: list[Publish], namespace: Path) -> list[socket.socket]:
    """Listens on the machine's 127.0.0.1 for each port and relays every connection to 127.0.0.1 in `namespace`.

    The listening sockets are made here, in the machine's namespace; one thread per port enters `namespace`,
    so the sockets it connects are there. stop_forwarding() on the returned sockets stops it.
    """
    listeners: list[socket.socket] = []
    for port in published:
        try:
            listeners.append(socket.create_server(("127.0.0.1", port.host)))
        except OSError as error:
            stop_forwarding(listeners)
            raise RunOptionError(f"--publish {port.host}: cannot listen on 127.0.0.1:{port.host} ({error.strerror}); "
                                 "publish a free port") from error

    def serve(listener: socket.socket, port: int) -> None:
        try:
            _enter_network_namespace(namespace)
        except OSError as error:
            print(f"run: error: cannot forward 127.0.0.1:{listener.getsockname()[1]} into the engine's network namespace "
                  f"({error}); run the image of this machine's architecture, or set DOCKER_HOST to an engine that runs "
                  "this one", file=sys.stderr, flush=True)
            listener.close()
            return
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed: the run is over
                return
            try:
                inside = socket.create_connection(("127.0.0.1", port), timeout=10)
                inside.settimeout(None)
            except OSError:
                client.close()  # nothing listens there yet: the client sees the connection closed, and retries
                continue
            for source, target in ((client, inside), (inside, client)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()

    for listener, port in zip(listeners, published):
        threading.Thread(target=serve, args=(listener, port.container), daemon=True).start()
    return listeners


def run(archive: Path, layout: Path, tag: str, arguments: list[str], scratch: Path) -> int:
    published, arguments = split_arguments(arguments)
    platform = Layout(layout).single_image().platform
    with engine(platform.architecture, scratch) as (docker_host, private):
        environment = {**os.environ, "DOCKER_HOST": docker_host}
        bridge = private or not published or has_bridge(environment)
        network = network_options(published, private, platform.architecture != machine_architecture(), bridge, docker_host)
        namespace = getattr(docker_host, "network_namespace", None)
        listeners = forward(published, namespace) if published and private and namespace else []
        loaded = subprocess.run(["docker", "load", "--quiet", "--input", str(archive)], env=environment,
                                capture_output=True, text=True, check=False)
        if loaded.returncode != 0:
            raise EngineError(f"docker load of {archive.name} into {docker_host} failed: {loaded.stderr.strip()}")
        interactive = ["--interactive"] + (["--tty"] if sys.stdin.isatty() and sys.stdout.isatty() else [])
        # Named, so a run that is stopped (Ctrl-C, SIGTERM) removes its container from a lasting engine too.
        name = f"bazel-run-{os.getpid()}"
        for port in published:
            print(f"run: serving on http://127.0.0.1:{port.host}/ (the container's port {port.container})", file=sys.stderr, flush=True)
        command = ["docker", "run", "--rm", f"--name={name}", *interactive, *network, f"--platform={platform}", tag, *arguments]
        container = subprocess.Popen(command, env=environment)
        try:
            return container.wait()
        finally:
            stop_forwarding(listeners)
            if container.poll() is None:
                subprocess.run(["docker", "rm", "--force", name], env=environment, capture_output=True, check=False)
                container.wait()


def _exit_on_signal(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so the private engine and its container are stopped."""
    raise SystemExit(128 + signum)


@cli.tool("run", RunOptionError, EngineError, LayoutError, EmulatorError, NamespaceError, OSError)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, required=True, help="the image as a docker-archive (oci_load's tar)")
    parser.add_argument("--layout", type=Path, required=True, help="the image's OCI layout, for its platform")
    parser.add_argument("--tag", required=True, help="the name it is loaded and run as")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the container's arguments")
    args = parser.parse_args(argv)
    # The launcher puts `--` before the user's arguments, so none of them is taken for an option of the launcher's.
    arguments = args.arguments[1:] if args.arguments[:1] == ["--"] else args.arguments
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with tempfile.TemporaryDirectory(prefix="image-run-") as scratch:
        return run(args.archive, args.layout, args.tag, arguments, Path(scratch))


if __name__ == "__main__":
    raise SystemExit(main())
