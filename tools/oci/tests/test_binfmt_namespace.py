"""Tests for tools/oci/binfmt_namespace.py.

The pure parts run anywhere. The namespace itself needs real root and `unshare` (the build root has both;
Bazel runs this test without its sandbox, which would map root alone): it checks that the setup works
exactly where the kernel is 6.7 or later, that the machine's binfmt_misc is left as it was, and that
stopping the namespace, or killing its starter, ends every process in it.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.oci import binfmt_namespace
from tools.oci.binfmt_namespace import ELF_HANDLERS

QEMU_AARCH64 = Path("/usr/bin/qemu-aarch64")
HOST_BINFMT = Path("/proc/sys/fs/binfmt_misc")


def elf_header(machine: int, elf_type: int = 2) -> bytes:
    """The first 20 bytes of a little-endian 64-bit ELF file: ident, e_type, e_machine."""
    ident = b"\x7fELF\x02\x01\x01\x03" + bytes(8)  # OS ABI byte 3 (GNU/Linux): the mask must ignore it
    return ident + elf_type.to_bytes(2, "little") + machine.to_bytes(2, "little")


def matches(architecture: str, header: bytes) -> bool:
    magic, mask = ELF_HANDLERS[architecture]
    return bytes(b & m for b, m in zip(header, mask)) == magic


def test_aarch64_handler_matches_aarch64_executables_and_libraries_only() -> None:
    aarch64, x86_64 = 0xB7, 0x3E
    assert matches("arm64", elf_header(aarch64, elf_type=2))  # ET_EXEC
    assert matches("arm64", elf_header(aarch64, elf_type=3))  # ET_DYN: PIE executables
    assert not matches("arm64", elf_header(aarch64, elf_type=1))  # ET_REL
    assert not matches("arm64", elf_header(x86_64))
    assert matches("amd64", elf_header(x86_64)) and not matches("amd64", elf_header(aarch64))
    assert all(len(magic) == len(mask) for magic, mask in ELF_HANDLERS.values())


def test_escape_writes_every_byte_as_hex() -> None:
    assert binfmt_namespace.escape(b"\x7f:A") == "\\x7f\\x3a\\x41"


def test_register_line_has_binfmt_misc_fields_and_the_fix_binary_flag() -> None:
    line = binfmt_namespace.register_line("arm64", QEMU_AARCH64)
    fields = line.split(":")
    assert fields[0] == "" and len(fields) == 8
    name, kind, offset, magic, mask, interpreter, flags = fields[1:]
    assert (name, kind, offset, interpreter, flags) == ("qemu-aarch64", "M", "", str(QEMU_AARCH64), "PF")
    assert re.fullmatch(r"(\\x[0-9a-f]{2})+", magic) and re.fullmatch(r"(\\x[0-9a-f]{2})+", mask)
    assert magic.startswith("\\x7f\\x45\\x4c\\x46")


def test_register_line_refuses_unknown_architectures() -> None:
    with pytest.raises(binfmt_namespace.NamespaceError, match="no ELF magic known for 's390x'"):
        binfmt_namespace.register_line("s390x", Path("/usr/bin/qemu-s390x"))


def test_namespace_command_unshares_everything_and_waits_for_the_maps() -> None:
    command = binfmt_namespace.namespace_command(["inner", "arg"])
    assert command[0] == "unshare"
    for flag in ("--user", "--mount", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"):
        assert flag in command
    assert command[command.index("--") + 1 :] == ["sh", "-c", binfmt_namespace.WAIT_FOR_MAPS, "sh", "inner", "arg"]


@pytest.mark.parametrize(("word", "runs"), [(b"mapped\n", True), (b"", False), (b"failed\n", False)])
def test_the_command_runs_only_after_the_word_that_the_maps_are_written(word: bytes, runs: bool) -> None:
    result = subprocess.run(["sh", "-c", binfmt_namespace.WAIT_FOR_MAPS, "sh", "echo", "ran"], input=word,
                            capture_output=True)
    assert (result.stdout == b"ran\n") is runs
    assert (result.returncode == 0) is runs


def test_inner_command_runs_this_module_with_the_command_last(tmp_path: Path) -> None:
    command = binfmt_namespace.inner_command(QEMU_AARCH64, "arm64", tmp_path, ["dockerd", "--flag"])
    assert command[:3] == [sys.executable, "-m", "tools.oci.binfmt_namespace"]
    assert command[command.index("--") + 1 :] == ["dockerd", "--flag"]


def test_write_id_maps_writes_the_identity_for_65536_ids(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    binfmt_namespace.write_id_maps(42, proc=tmp_path)
    assert (tmp_path / "42/uid_map").read_text() == (tmp_path / "42/gid_map").read_text() == "0 0 65536\n"


def test_write_id_maps_failure_is_a_namespace_error(tmp_path: Path) -> None:
    with pytest.raises(binfmt_namespace.NamespaceError, match="cannot write uid_map"):
        binfmt_namespace.write_id_maps(42, proc=tmp_path)


@pytest.mark.parametrize(("failure", "status"), [(errno.EPERM, 3), (errno.ENODEV, 3), (errno.ENOENT, 1)])
def test_main_exits_unsupported_only_when_the_kernel_refuses_the_mount(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], failure: int, status: int
) -> None:
    monkeypatch.setattr(binfmt_namespace, "mount_binfmt_misc", lambda directory: failure)
    monkeypatch.setattr(binfmt_namespace, "supervise", lambda *args: pytest.fail("ran the command after a failed mount"))
    argv = ["--emulator", str(QEMU_AARCH64), "--architecture", "arm64", "--binfmt-dir", str(tmp_path), "true"]
    assert binfmt_namespace.main(argv) == status
    assert os.strerror(failure) in capsys.readouterr().err


def test_main_registers_then_execs_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    executed: list[list[str]] = []
    monkeypatch.setattr(binfmt_namespace, "mount_binfmt_misc", lambda directory: 0)
    monkeypatch.setattr(binfmt_namespace, "supervise", lambda command, lifeline: executed.append(command) or 5)
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64\nflags: F\n")
    argv = ["--emulator", str(QEMU_AARCH64), "--architecture", "arm64", "--binfmt-dir", str(tmp_path), "--", "dockerd", "-D"]
    assert binfmt_namespace.main(argv) == 5
    assert (tmp_path / "register").read_text() == binfmt_namespace.register_line("arm64", QEMU_AARCH64)
    assert executed == [["dockerd", "-D"]]


def test_main_does_not_exec_when_the_handler_is_not_enabled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binfmt_namespace, "mount_binfmt_misc", lambda directory: 0)
    monkeypatch.setattr(binfmt_namespace, "supervise", lambda *args: pytest.fail("ran the command without a handler"))
    (tmp_path / "qemu-aarch64").write_text("disabled\n")
    argv = ["--emulator", str(QEMU_AARCH64), "--architecture", "arm64", "--binfmt-dir", str(tmp_path), "true"]
    assert binfmt_namespace.main(argv) == 1


def test_supervise_returns_the_commands_exit_status() -> None:
    read_end, write_end = os.pipe()
    try:
        assert binfmt_namespace.supervise(["sh", "-c", "exit 7"], read_end) == 7
    finally:
        os.close(read_end)
        os.close(write_end)


def test_supervise_returns_once_the_lifeline_closes() -> None:
    read_end, write_end = os.pipe()
    os.close(write_end)
    started = time.monotonic()
    try:
        assert binfmt_namespace.supervise(["sleep", "3"], read_end) == 0
    finally:
        os.close(read_end)
    assert time.monotonic() - started < 2


# --- The real namespace (root) ---------------------------------------------------------------------------

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 and "TEST_TARGET" not in os.environ,
    reason="needs root (run through tools/bazel, where it always runs)",
)


def kernel_at_least(major: int, minor: int) -> bool:
    found = re.match(r"(\d+)\.(\d+)", os.uname().release)
    assert found, os.uname().release
    return (int(found[1]), int(found[2])) >= (major, minor)


def host_binfmt_state() -> object:
    """What the machine's binfmt_misc shows: not mounted, or its entries and their contents."""
    if not (HOST_BINFMT / "status").exists():
        return "not mounted"
    return {entry.name: entry.read_text() if entry.name != "register" else "" for entry in HOST_BINFMT.iterdir()}


def namespace_members(user_namespace: str) -> list[int]:
    """Live processes in `user_namespace`. Zombies do not count: they run nothing, and whoever inherits
    them (a subreaper such as Bazel's process wrapper) reaps them when it gets to it."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                in_namespace = os.readlink(entry / "ns/user") == user_namespace
                state = (entry / "stat").read_text().rsplit(") ", 1)[1][0]
            except OSError:
                continue
            if in_namespace and state != "Z":
                members.append(int(entry.name))
    return members


def wait_until(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@needs_root
def test_setup_works_exactly_where_the_kernel_has_binfmt_misc_per_user_namespace(tmp_path: Path) -> None:
    before = host_binfmt_state()
    refusal = binfmt_namespace.check_supported(QEMU_AARCH64, "arm64", tmp_path)
    if kernel_at_least(6, 7):
        assert refusal is None
    else:
        assert refusal is not None and "cannot be mounted in a user namespace" in refusal
    assert host_binfmt_state() == before


@needs_root
def test_inside_root_is_mapped_the_handler_is_registered_and_only_loopback_exists(tmp_path: Path) -> None:
    if not kernel_at_least(6, 7):
        pytest.fail("this kernel has no binfmt_misc per user namespace; the setup test above covers it")
    before = host_binfmt_state()
    # /proc is the namespace's own (--mount-proc), so /proc/net/dev lists its network namespace's interfaces.
    script = (f"cat /proc/self/uid_map /proc/self/gid_map {tmp_path}/qemu-aarch64; tr '\\0' ' ' </proc/1/cmdline; echo; "
              "sed -n '3,$p' /proc/net/dev | cut -d: -f1 | tr -d ' '")
    process = binfmt_namespace.start(["sh", "-c", script], QEMU_AARCH64, "arm64", tmp_path, output=subprocess.PIPE)
    assert process.stdout is not None
    output = process.stdout.read().decode()
    assert process.wait() == 0, output
    assert re.search(r"^\s*0\s+0\s+65536\n\s*0\s+0\s+65536\nenabled\ninterpreter /usr/bin/qemu-aarch64\nflags: PF\n",
                     output), output
    assert "-m tools.oci.binfmt_namespace" in output  # the namespace's init
    assert output.endswith("\nlo\n"), output  # the only network interface
    assert host_binfmt_state() == before


@needs_root
def test_stop_ends_every_process_in_the_namespace(tmp_path: Path) -> None:
    process = binfmt_namespace.start(["sh", "-c", "sleep 300 & sleep 300 & wait"], QEMU_AARCH64, "arm64", tmp_path)
    assert wait_until(lambda: len(namespace_members(os.readlink(f"/proc/{process.pid}/ns/user"))) >= 4)
    user_namespace = os.readlink(f"/proc/{process.pid}/ns/user")
    binfmt_namespace.stop(process)
    assert wait_until(lambda: not namespace_members(user_namespace))


@needs_root
def test_killing_the_starter_ends_the_namespace(tmp_path: Path) -> None:
    """SIGKILL to the test that started the namespace (as Bazel's last resort on a timeout) leaves nothing."""
    starter = subprocess.Popen(
        [sys.executable, "-c",
         "import os, sys; from pathlib import Path; from tools.oci import binfmt_namespace as b\n"
         f"p = b.start(['sleep', '300'], Path('{QEMU_AARCH64}'), 'arm64', Path('{tmp_path}'))\n"
         "print(os.readlink(f'/proc/{p.pid}/ns/user'), flush=True)\n"
         "p.wait()\n"],
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )
    assert starter.stdout is not None
    user_namespace = starter.stdout.readline().decode().strip()
    assert user_namespace.startswith("user:[") and namespace_members(user_namespace)
    starter.send_signal(signal.SIGKILL)
    starter.wait()
    assert wait_until(lambda: not namespace_members(user_namespace))


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
