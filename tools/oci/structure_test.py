"""Runs container-structure-test against an OCI layout in a real Docker engine.

The engine is the one DOCKER_HOST names, or else a private dockerd this process starts (as root) with its
own data root, exec root and socket under a temporary directory, and stops again before it exits, also
when the test is interrupted (SIGTERM, SIGINT).

For an image of another architecture than the machine's, the private dockerd runs in its own user, mount,
network and PID namespace, whose own binfmt_misc has the build root's static qemu registered
(binfmt_namespace.py; Linux 6.7 and later), so its command tests run as a native image's do. Only where the
kernel refuses that (and no binfmt_misc handler on the machine runs the image), or the DOCKER_HOST engine
cannot run the image, do the file and metadata tests run alone, and the output says that the command tests
were NOT run.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Iterator

import yaml

from tools import cli
from tools.image.chroot import EmulatorError, find_emulator, machine_architecture
from tools.oci import binfmt_namespace
from tools.oci.binfmt_namespace import NamespaceError
from tools.architectures import ARCHITECTURES, BY_MACHINE
from tools.oci.layout import Layout, LayoutError

ENGINE_START_TIMEOUT = 60.0


class EngineError(Exception):
    """No engine is available; the message says what is missing and how to provide one."""


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=5)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self.socket_path)


def engine_answers(socket_path: str) -> bool:
    """Whether the Docker API on `socket_path` answers its /_ping endpoint."""
    return pings(UnixHTTPConnection(socket_path))


def pings(connection: http.client.HTTPConnection) -> bool:
    """Whether the Docker API behind `connection` answers its /_ping endpoint; closes the connection."""
    try:
        connection.request("GET", "/_ping")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def check_named_engine(docker_host: str) -> None:
    """Fails with the fix when the engine DOCKER_HOST names does not answer, before the test tool's own error."""
    if docker_host.startswith("unix://"):
        answers = engine_answers(docker_host.removeprefix("unix://"))
    elif docker_host.startswith("tcp://"):
        host, _, port = docker_host.removeprefix("tcp://").rstrip("/").rpartition(":")
        try:
            answers = pings(http.client.HTTPConnection(host.strip("[]"), int(port or 2375), timeout=5))
        except ValueError:  # a port that is not a number
            answers = False
    else:
        raise EngineError(f"DOCKER_HOST={docker_host} is neither unix:///PATH nor tcp://HOST:PORT; fix it, or unset "
                          "DOCKER_HOST so the test starts a private engine of its own (as root)")
    if not answers:
        raise EngineError(f"DOCKER_HOST={docker_host} names an engine that does not answer; start that engine, or "
                          "unset DOCKER_HOST so the test starts a private engine of its own (as root)")


def dockerd_command(state: Path, socket_path: str = "") -> list[str]:
    # No bridge, NAT or forwarding: the engine must not touch the machine's network, and containers run
    # without one.
    return [
        "dockerd", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--bridge=none",
        "--data-root", str(state / "data"), "--exec-root", str(state / "exec"),
        "--pidfile", str(state / "dockerd.pid"), "--host", f"unix://{socket_path or state / 'docker.sock'}",
        "--storage-driver", "vfs" if os.environ.get("STRUCTURE_TEST_VFS") else "overlay2",
    ]


def check_can_start_engine() -> None:
    missing = []
    if os.geteuid() != 0:
        missing.append("root privileges to start a private dockerd")
    if not shutil.which("dockerd"):
        missing.append("dockerd (Debian's docker.io, part of the build root)")
    if missing:
        raise EngineError(
            "No container engine for the structure tests: DOCKER_HOST is not set and this test cannot start "
            f"one ({' and '.join(missing)} missing). Run the tests through tools/bazel as root, or point "
            "DOCKER_HOST at a running engine, e.g. DOCKER_HOST=unix:///var/run/docker.sock tools/bazel test //...")


@dataclass(frozen=True)
class Emulation:
    """A foreign architecture's images, run by `emulator` registered in the engine's own binfmt_misc."""

    architecture: str
    emulator: Path


class EngineHost(str):
    """A private engine's DOCKER_HOST; `network_namespace` is its own network namespace (/proc/PID/ns/net) when
    it runs in one (emulation), None when it has the machine's."""

    network_namespace: Path | None = None


@contextlib.contextmanager
def private_engine(emulation: Emulation | None = None, socket: Path | None = None) -> Iterator[EngineHost]:
    """Starts dockerd and yields its DOCKER_HOST; stops it, and everything it started, on the way out.

    With `emulation`, dockerd runs in a namespace of its own with the emulator registered there; stopping
    it kills the whole namespace, and its mounts go with it. The API socket is `socket` when given
    (tools/oci/engine.py puts it where the machine sees it), else in the engine's state directory.
    """
    check_can_start_engine()
    # Short path: a unix socket path must stay under 108 bytes.
    state = Path(tempfile.mkdtemp(prefix="cst-engine-", dir="/tmp"))
    socket_path = str(socket or state / "docker.sock")
    log_path = state / "dockerd.log"
    with open(log_path, "wb") as log:
        if emulation is None:
            process = subprocess.Popen(
                dockerd_command(state, socket_path), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        else:
            binfmt_dir = state / "binfmt_misc"
            binfmt_dir.mkdir()
            process = binfmt_namespace.start(
                dockerd_command(state, socket_path), emulation.emulator, emulation.architecture, binfmt_dir, output=log)
    try:
        wait_for_engine(process, socket_path, log_path)
        host = EngineHost(f"unix://{socket_path}")
        if emulation is not None:  # unshare itself entered the new namespaces (all but the PID one)
            host.network_namespace = Path(f"/proc/{process.pid}/ns/net")
        yield host
    finally:
        if emulation is None:
            stop_engine(process)
            subprocess.run(["umount", "-R", "-l", str(state / "data")], stderr=subprocess.DEVNULL, check=False)
        else:
            binfmt_namespace.stop(process)
        shutil.rmtree(state, ignore_errors=True)


def wait_for_engine(process: subprocess.Popen[bytes], socket_path: str, log_path: Path) -> None:
    deadline = time.monotonic() + ENGINE_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineError(f"dockerd exited with {process.returncode} while starting:\n{tail(log_path)}")
        if engine_answers(socket_path):
            return
        time.sleep(0.2)
    raise EngineError(f"dockerd did not answer within {ENGINE_START_TIMEOUT:.0f} s:\n{tail(log_path)}")


def stop_engine(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    # dockerd's containerd and shims share its session: make sure none outlives the test.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, 9)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def image_tag(test_target: str) -> str:
    """A tag unique to the test target, so tests sharing one engine never load over each other's image."""
    # Each run of other characters becomes a separator the reference grammar allows between two
    # alphanumerics ('.', '_', '__' or dashes), else '-'; the name must start and end alphanumeric.
    separator = re.compile(r"[._]|__|-+")
    name = re.sub(r"[^a-z0-9]+", lambda run: run[0] if separator.fullmatch(run[0]) else "-",
                  test_target.lower()).strip("-._") or "image"
    # CST insists on an explicit registry; nothing is ever pulled from or pushed to it.
    return f"structure-test.invalid/{name}:latest"


def structure_test_command(binary: str, image: str, configs: list[str], driver: str, platform_name: str) -> list[str]:
    command = [binary, "test", "--driver", driver, "--image-from-oci-layout", image, "--no-color",
               "--default-image-tag", image_tag(os.environ.get("TEST_TARGET", "")), "--platform", platform_name]
    for config in configs:
        command += ["--config", config]
    return command


MACHINE_ARCHITECTURES = {machine: architecture.name for machine, architecture in BY_MACHINE.items()}
BINFMT_NAMES = {name: architecture.machine for name, architecture in ARCHITECTURES.items()}


def can_execute(architecture: str, binfmt: Path = Path("/proc/sys/fs/binfmt_misc")) -> bool:
    """Whether containers of `architecture` can run here: natively, or through a registered qemu handler."""
    if MACHINE_ARCHITECTURES.get(platform.machine()) == architecture:
        return True
    name = BINFMT_NAMES.get(architecture, architecture)
    with contextlib.suppress(OSError):
        for handler in binfmt.iterdir():
            if name in handler.name and handler.read_text().startswith("enabled"):
                return True
    return False


def without_command_tests(configs: list[str], directory: Path) -> list[str]:
    """Copies of the configs without their commandTests (as JSON, which is YAML); configs left empty are dropped."""
    stripped = []
    for number, config in enumerate(configs):
        data = yaml.safe_load(Path(config).read_text())
        data.pop("commandTests", None)
        if set(data) - {"schemaVersion"}:
            path = directory / f"{number}-{Path(config).stem}.json"
            path.write_text(json.dumps(data))
            stripped.append(str(path))
    return stripped


NOT_RUN_NOTE = ("NOTE: command tests were NOT run for this linux/{architecture} image: {reason}. File and metadata "
                "tests still run: they only create the container, never start it.")


def emulation_for(architecture: str, directory: Path) -> tuple[Emulation | None, str]:
    """How the private engine runs `architecture`'s images: (Emulation, "") when this kernel gives a user
    namespace its own binfmt_misc (found out by trying), else (None, the kernel's refusal)."""
    check_can_start_engine()
    emulator = find_emulator(architecture)
    binfmt_dir = directory / "binfmt-probe"
    binfmt_dir.mkdir()
    refusal = binfmt_namespace.check_supported(emulator, architecture, binfmt_dir)
    if refusal is None:
        return Emulation(architecture, emulator), ""
    return None, refusal


def run_structure_tests(binary: str, image: str, configs: list[str], driver: str) -> int:
    # os/architecture[/variant]: the form the engine and container-structure-test's --platform take.
    image_platform = Layout(Path(image)).single_image().platform
    architecture = image_platform.architecture
    with tempfile.TemporaryDirectory() as directory:
        if driver != "docker":
            return subprocess.run(structure_test_command(binary, image, configs, driver, str(image_platform))).returncode
        engine_named = bool(os.environ.get("DOCKER_HOST"))
        if engine_named:
            check_named_engine(os.environ["DOCKER_HOST"])
        emulation, refusal = None, ""
        if not engine_named and machine_architecture() != architecture:
            emulation, refusal = emulation_for(architecture, Path(directory))
        if emulation is None and not can_execute(architecture):
            if engine_named:
                reason = (f"the engine DOCKER_HOST names runs on this machine, which has no binfmt_misc handler "
                          f"for {BINFMT_NAMES.get(architecture)} (Debian's qemu-user-binfmt provides one)")
            else:
                reason = (f"this kernel ({platform.release()}) cannot give the engine's user namespace its own "
                          f"binfmt_misc ({refusal}), and the machine has no binfmt_misc handler for "
                          f"{BINFMT_NAMES.get(architecture)}")
            print(NOT_RUN_NOTE.format(architecture=architecture, reason=reason), flush=True)
            configs = without_command_tests(configs, Path(directory))
        elif emulation is not None:
            print(f"structure_test: running linux/{architecture} command tests under {emulation.emulator}, "
                  "registered in the engine's own user namespace", flush=True)
        command = structure_test_command(binary, image, configs, driver, str(image_platform))
        if engine_named:
            return subprocess.run(command).returncode
        with private_engine(emulation) as docker_host:
            return subprocess.run(command, env={**os.environ, "DOCKER_HOST": docker_host}).returncode


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (Bazel's on timeout or interrupt) unwinds like SIGINT, so the engine and its containers are stopped."""
    raise SystemExit(128 + signum)


@cli.tool("structure_test", EngineError, LayoutError, EmulatorError, NamespaceError)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, help="the container-structure-test executable")
    parser.add_argument("--image", required=True, help="OCI layout directory of the image under test")
    parser.add_argument("--config", action="append", required=True, help="structure test YAML")
    parser.add_argument("--driver", default="docker", choices=["docker", "tar"])
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    return run_structure_tests(args.binary, args.image, args.config, args.driver)


if __name__ == "__main__":
    raise SystemExit(main())
