"""Tests for tools/oci/structure_test.py: image tags, the CST command line, engine checks and engine start-up.

No Docker engine is needed: the engine's API is a tiny HTTP server on a unix socket, and dockerd's start-up
is played by short-lived shell processes.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import platform
import re
import shutil
import signal
import socketserver
import stat
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tools.oci import structure_test
from tools.oci.layout import Layout, Platform
from tools.oci.structure_test import EngineError

# The Docker reference grammar (distribution/reference): a domain, then lowercase path components, then a tag.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REFERENCE = re.compile(rf"^structure-test\.invalid/(?P<name>{_COMPONENT}(?:/{_COMPONENT})*):(?P<tag>[\w][\w.-]{{0,127}})$")


# --- image_tag -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target, name", [
    ("//:python3.13_debian13_test", "python3.13_debian13_test"),
    ("//images/Python:Nonroot_Test", "images-python-nonroot_test"),
    ("@repo//a/b:c:d", "repo-a-b-c-d"),
    ("//UPPER/CASE:X", "upper-case-x"),
])
def test_image_tag_sanitises_the_target(target: str, name: str) -> None:
    assert structure_test.image_tag(target) == f"structure-test.invalid/{name}:latest"


@pytest.mark.parametrize("target", [
    "//:python3.13_debian13_test",
    "//images/Python:Nonroot_Test",
    "//a:b..c",
    "//a:b._c",
    "//a:b_-c",
    "//a:b___c",
    "//a:trailing_",
    "//a:trailing.",
    "//a:_leading",
    "//a:-x-",
    "//:...",
    "",
    "////",
    "//a:UNICODE_\u00e9t\u00e9",
])
def test_image_tag_is_always_a_valid_lowercase_reference(target: str) -> None:
    tag = structure_test.image_tag(target)
    assert tag == tag.lower()
    assert REFERENCE.match(tag), f"{target!r} gave the invalid reference {tag!r}"


def test_image_tag_of_nothing_is_image() -> None:
    assert structure_test.image_tag("") == "structure-test.invalid/image:latest"
    assert structure_test.image_tag("//:") == "structure-test.invalid/image:latest"


def test_different_targets_get_different_tags() -> None:
    targets = ["//:python3.12_debian13_test", "//:python3.13_debian13_test", "//:python3.13_debian13_nonroot_test"]
    assert len({structure_test.image_tag(target) for target in targets}) == len(targets)


# --- structure_test_command ------------------------------------------------------------------------------


def test_structure_test_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_TARGET", "//images:Python/3:test")
    command = structure_test.structure_test_command("/bin/cst", "img/layout", ["a.yaml", "b.yaml", "c.yaml"], "docker",
                                                    "linux/arm64/v8")
    assert command[command.index("--platform") + 1] == "linux/arm64/v8"

    assert command[:2] == ["/bin/cst", "test"]
    assert command[command.index("--driver") + 1] == "docker"
    assert command[command.index("--image-from-oci-layout") + 1] == "img/layout"
    assert command[command.index("--default-image-tag") + 1] == "structure-test.invalid/images-python-3-test:latest"
    assert "--no-color" in command
    configs = [command[i + 1] for i, flag in enumerate(command) if flag == "--config"]
    assert configs == ["a.yaml", "b.yaml", "c.yaml"]


def test_structure_test_command_without_test_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_TARGET", raising=False)
    command = structure_test.structure_test_command("cst", "layout", ["only.yaml"], "tar", "linux/amd64")
    assert command[command.index("--driver") + 1] == "tar"
    assert command[command.index("--default-image-tag") + 1] == "structure-test.invalid/image:latest"
    assert command.count("--config") == 1


def test_image_platform_includes_the_variant_only_when_set() -> None:
    assert str(Platform.of_config({"os": "linux", "architecture": "amd64"})) == "linux/amd64"
    assert str(Platform.of_config({"os": "linux", "architecture": "arm64", "variant": "v8"})) == "linux/arm64/v8"


def test_can_execute_natively_or_through_an_enabled_qemu_handler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(structure_test.platform, "machine", lambda: "x86_64")
    assert structure_test.can_execute("amd64", tmp_path)
    assert not structure_test.can_execute("arm64", tmp_path)
    (tmp_path / "qemu-aarch64").write_text("disabled\ninterpreter /usr/bin/qemu-aarch64\n")
    assert not structure_test.can_execute("arm64", tmp_path)
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64\n")
    assert structure_test.can_execute("arm64", tmp_path)


def test_without_command_tests_keeps_file_and_metadata_tests(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text("schemaVersion: 2.0.0\ncommandTests:\n  - name: x\n    command: x\n"
                     "fileExistenceTests:\n  - name: sh\n    path: /bin/sh\n    shouldExist: true\n")
    commands_only = tmp_path / "commands.yaml"
    commands_only.write_text("schemaVersion: 2.0.0\ncommandTests:\n  - name: x\n    command: x\n")
    out = tmp_path / "out"
    out.mkdir()
    [stripped] = structure_test.without_command_tests([str(mixed), str(commands_only)], out)
    assert json.loads(Path(stripped).read_text()) == {
        "schemaVersion": "2.0.0", "fileExistenceTests": [{"name": "sh", "path": "/bin/sh", "shouldExist": True}]}


def test_dockerd_command_keeps_state_under_its_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRUCTURE_TEST_VFS", raising=False)
    command = structure_test.dockerd_command(Path("/tmp/cst-engine-x"))
    assert command[0] == "dockerd"
    assert command[command.index("--data-root") + 1] == "/tmp/cst-engine-x/data"
    assert command[command.index("--exec-root") + 1] == "/tmp/cst-engine-x/exec"
    assert command[command.index("--host") + 1] == "unix:///tmp/cst-engine-x/docker.sock"
    assert command[command.index("--storage-driver") + 1] == "overlay2"
    assert "--iptables=false" in command and "--bridge=none" in command

    monkeypatch.setenv("STRUCTURE_TEST_VFS", "1")
    command = structure_test.dockerd_command(Path("/tmp/cst-engine-x"))
    assert command[command.index("--storage-driver") + 1] == "vfs"


# --- check_can_start_engine and main ---------------------------------------------------------------------


def fake_environment(monkeypatch: pytest.MonkeyPatch, *, euid: int, dockerd: str | None) -> None:
    monkeypatch.setattr(structure_test.os, "geteuid", lambda: euid)
    monkeypatch.setattr(structure_test.shutil, "which", lambda name: dockerd if name == "dockerd" else None)


def test_engine_can_start_as_root_with_dockerd(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_environment(monkeypatch, euid=0, dockerd="/usr/sbin/dockerd")
    structure_test.check_can_start_engine()


def test_engine_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_environment(monkeypatch, euid=1000, dockerd="/usr/sbin/dockerd")
    with pytest.raises(EngineError) as error:
        structure_test.check_can_start_engine()
    message = str(error.value)
    assert "DOCKER_HOST" in message
    assert "root privileges" in message
    assert "dockerd (" not in message


def test_engine_needs_dockerd(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_environment(monkeypatch, euid=0, dockerd=None)
    with pytest.raises(EngineError) as error:
        structure_test.check_can_start_engine()
    message = str(error.value)
    assert "DOCKER_HOST" in message
    assert "dockerd" in message
    assert "root privileges" not in message


def test_engine_names_everything_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_environment(monkeypatch, euid=1000, dockerd=None)
    with pytest.raises(EngineError, match=r"root privileges .* and dockerd"):
        structure_test.check_can_start_engine()


def recording_binary(directory: Path, status: int) -> tuple[Path, Path]:
    """A stand-in for container-structure-test that records its arguments and DOCKER_HOST, then exits."""
    record = directory / "record"
    binary = directory / "cst"
    binary.write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' \"DOCKER_HOST=$DOCKER_HOST\" \"$@\" > '{record}'\n"
        f"exit {status}\n"
    )
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return binary, record


@pytest.fixture
def layout(build_image) -> str:
    """A real OCI layout of this machine's architecture, so its containers could run here."""
    architecture = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return str(build_image("image", "--architecture", architecture))


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "a.yaml"
    path.write_text('schemaVersion: "2.0.0"\ncommandTests:\n  - name: t\n    command: "true"\n')
    return str(path)


def test_main_without_engine_fails_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], layout: str, config: str
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    fake_environment(monkeypatch, euid=1000, dockerd=None)
    binary, record = recording_binary(tmp_path, 0)

    status = structure_test.main(["--binary", str(binary), "--image", layout, "--config", config])

    assert status == 1
    assert not record.exists(), "container-structure-test ran without an engine"
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("structure_test: error: No container engine")
    assert "DOCKER_HOST" in lines[0]


def test_main_uses_the_engine_docker_host_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str, config: str
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/some.sock")
    monkeypatch.setattr(structure_test, "check_named_engine", lambda host: None)  # an engine that answers
    monkeypatch.setenv("TEST_TARGET", "//:t")
    fake_environment(monkeypatch, euid=1000, dockerd=None)  # no private engine could start, and none is needed
    binary, record = recording_binary(tmp_path, 7)

    status = structure_test.main(["--binary", str(binary), "--image", layout, "--config", config, "--config", config])

    assert status == 7
    lines = record.read_text().splitlines()
    assert lines[0] == "DOCKER_HOST=unix:///run/some.sock"
    platform_name = str(Layout(Path(layout)).single_image().platform)
    assert lines[1:] == structure_test.structure_test_command(str(binary), layout, [config, config], "docker",
                                                              platform_name)[1:]


def test_main_tar_driver_needs_no_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str, config: str
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    fake_environment(monkeypatch, euid=1000, dockerd=None)
    binary, record = recording_binary(tmp_path, 0)

    assert structure_test.main(["--binary", str(binary), "--image", layout, "--config", config, "--driver", "tar"]) == 0
    lines = record.read_text().splitlines()
    assert lines[0] == "DOCKER_HOST="
    assert lines[lines.index("--driver") + 1] == "tar"


@pytest.fixture
def arm64_layout(build_image) -> str:
    return str(build_image("arm64-image", "--architecture", "arm64", "--variant", "v8"))


def fake_private_engine(monkeypatch: pytest.MonkeyPatch) -> list[structure_test.Emulation | None]:
    """Replaces the private engine; returns the emulations it was started with."""
    started: list[structure_test.Emulation | None] = []

    @contextlib.contextmanager
    def engine(emulation: structure_test.Emulation | None = None) -> Iterator[str]:
        started.append(emulation)
        yield "unix:///fake/docker.sock"

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(structure_test, "private_engine", engine)
    monkeypatch.setattr(structure_test, "machine_architecture", lambda: "amd64")
    monkeypatch.setattr(structure_test, "can_execute", lambda architecture: architecture == "amd64")
    return started


def test_foreign_image_runs_its_command_tests_in_an_emulating_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], arm64_layout: str, config: str
) -> None:
    started = fake_private_engine(monkeypatch)
    emulation = structure_test.Emulation("arm64", Path("/usr/bin/qemu-aarch64"))
    monkeypatch.setattr(structure_test, "emulation_for", lambda architecture, directory: (emulation, ""))
    binary, record = recording_binary(tmp_path, 0)

    assert structure_test.main(["--binary", str(binary), "--image", arm64_layout, "--config", config]) == 0

    assert started == [emulation]
    lines = record.read_text().splitlines()
    assert lines[0] == "DOCKER_HOST=unix:///fake/docker.sock"
    assert lines[lines.index("--config") + 1] == config  # the config as it is, command tests included
    assert lines[lines.index("--platform") + 1] == "linux/arm64/v8"
    assert "NOT run" not in capsys.readouterr().out


def test_foreign_image_without_binfmt_misc_per_namespace_runs_no_command_tests_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], arm64_layout: str, config: str
) -> None:
    started = fake_private_engine(monkeypatch)
    refusal = "binfmt_misc cannot be mounted in a user namespace here (Operation not permitted)"
    monkeypatch.setattr(structure_test, "emulation_for", lambda architecture, directory: (None, refusal))
    binary, record = recording_binary(tmp_path, 0)

    assert structure_test.main(["--binary", str(binary), "--image", arm64_layout, "--config", config]) == 0

    assert started == [None]
    out = capsys.readouterr().out
    assert out.startswith("NOTE: command tests were NOT run for this linux/arm64 image: ") and refusal in out
    lines = record.read_text().splitlines()
    assert "--config" not in lines  # the only config held command tests alone


def test_native_image_needs_no_emulation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build_image, config: str
) -> None:
    started = fake_private_engine(monkeypatch)
    monkeypatch.setattr(structure_test, "emulation_for", lambda *args: pytest.fail("probed for a native image"))
    binary, _ = recording_binary(tmp_path, 0)
    layout = str(build_image("amd64-image", "--architecture", "amd64"))
    assert structure_test.main(["--binary", str(binary), "--image", layout, "--config", config]) == 0
    assert started == [None]


def test_sigterm_unwinds_like_sigint() -> None:
    with pytest.raises(SystemExit) as exit_:
        structure_test._exit_on_signal(signal.SIGTERM, None)
    assert exit_.value.code == 128 + signal.SIGTERM


# --- engine_answers, wait_for_engine and stop_engine -----------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: unix socket paths must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="cst-test-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _PingHandler(http.server.BaseHTTPRequestHandler):
    ping_status = 200

    def do_GET(self) -> None:  # noqa: N802 (the http.server naming)
        status = self.ping_status if self.path == "/_ping" else 404
        body = b"OK" if status == 200 else b"no"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # unix peers have no address to log

    def address_string(self) -> str:
        return "unix"


StartEngine = Callable[..., str]


@pytest.fixture
def fake_engine(short_dir: Path) -> Iterator[StartEngine]:
    """Starts an HTTP server on a unix socket that answers GET /_ping with `status`; returns the socket path."""
    servers: list[_UnixHTTPServer] = []

    def start(status: int = 200) -> str:
        path = str(short_dir / f"docker{len(servers)}.sock")
        handler = type("Handler", (_PingHandler,), {"ping_status": status})
        server = _UnixHTTPServer(path, handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return path

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_engine_answers_a_ping(fake_engine: StartEngine) -> None:
    assert structure_test.engine_answers(fake_engine(200)) is True


def test_engine_that_fails_its_ping_does_not_answer(fake_engine: StartEngine) -> None:
    assert structure_test.engine_answers(fake_engine(500)) is False


def test_missing_socket_does_not_answer(short_dir: Path) -> None:
    assert structure_test.engine_answers(str(short_dir / "missing.sock")) is False


def test_socket_nobody_listens_on_does_not_answer(short_dir: Path) -> None:
    import socket

    path = short_dir / "dead.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.close()  # the socket file stays, but nothing accepts on it
    assert path.exists()
    assert structure_test.engine_answers(str(path)) is False


def start_process(script: str, log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(["sh", "-c", script], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_wait_for_engine_reports_an_exited_dockerd_with_its_log(short_dir: Path) -> None:
    log_path = short_dir / "dockerd.log"
    process = start_process("echo boom; exit 3", log_path)
    try:
        with pytest.raises(EngineError) as error:
            structure_test.wait_for_engine(process, str(short_dir / "docker.sock"), log_path)
    finally:
        structure_test.stop_engine(process)
    message = str(error.value)
    assert "exited with 3" in message
    assert message.splitlines()[-1] == "boom"


def test_wait_for_engine_shows_only_the_log_tail(short_dir: Path) -> None:
    log_path = short_dir / "dockerd.log"
    process = start_process("i=1; while [ $i -le 30 ]; do echo line$i; i=$((i+1)); done; exit 1", log_path)
    try:
        with pytest.raises(EngineError) as error:
            structure_test.wait_for_engine(process, str(short_dir / "docker.sock"), log_path)
    finally:
        structure_test.stop_engine(process)
    tail = str(error.value).splitlines()[1:]
    assert tail == [f"line{i}" for i in range(11, 31)]


def test_wait_for_engine_returns_once_the_engine_answers(short_dir: Path, fake_engine: StartEngine) -> None:
    log_path = short_dir / "dockerd.log"
    process = start_process("exec sleep 60", log_path)
    try:
        structure_test.wait_for_engine(process, fake_engine(200), log_path)
        assert process.poll() is None
    finally:
        structure_test.stop_engine(process)
    assert process.returncode is not None


def test_wait_for_engine_gives_up_after_the_timeout(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(structure_test, "ENGINE_START_TIMEOUT", 0.5)
    log_path = short_dir / "dockerd.log"
    process = start_process("echo starting; exec sleep 60", log_path)
    try:
        with pytest.raises(EngineError, match=r"did not answer within") as error:
            structure_test.wait_for_engine(process, str(short_dir / "docker.sock"), log_path)
    finally:
        structure_test.stop_engine(process)
    assert str(error.value).splitlines()[-1] == "starting"


def test_stop_engine_stops_the_whole_session(short_dir: Path) -> None:
    log_path = short_dir / "dockerd.log"
    # The child stands in for containerd: it shares dockerd's session and must not outlive it.
    process = start_process("sleep 60 & echo $!; wait", log_path)
    child = None
    for _ in range(100):
        text = log_path.read_text().strip()
        if text:
            child = int(text)
            break
        threading.Event().wait(0.05)
    assert child is not None

    structure_test.stop_engine(process)

    assert process.returncode is not None
    for _ in range(100):
        if not _alive(child):
            break
        threading.Event().wait(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone before, or while, its stat was read
        return False

@pytest.mark.parametrize("docker_host", ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:9"])
def test_a_dead_docker_host_says_to_fix_or_unset_it(docker_host: str) -> None:
    with pytest.raises(structure_test.EngineError, match=r"names an engine that does not answer; start that engine, "
                       r"or unset DOCKER_HOST"):
        structure_test.check_named_engine(docker_host)


def test_a_malformed_docker_host_is_named() -> None:
    with pytest.raises(structure_test.EngineError, match="neither unix:///PATH nor tcp://HOST:PORT"):
        structure_test.check_named_engine("ssh://somewhere")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
