"""Runs a command as root of its own user namespace, where a static qemu is registered in binfmt_misc.

Linux 6.7 and later give every user namespace that mounts binfmt_misc its own instance, which the
namespace's processes (and their containers) use instead of the machine's. So a private dockerd started
in such a namespace runs foreign-architecture containers, while the machine's binfmt_misc is never
mounted, read or written; the instance disappears with the namespace.

The namespace (util-linux `unshare`): user, mount, network (loopback only) and PID. Its uid and gid
maps are the identity for 0-65535, written by the caller (real root), so files owned by nonroot (65532)
keep their owner.

Inside, `python3 -m tools.oci.binfmt_namespace --emulator QEMU --architecture ARCH --binfmt-dir DIR -- COMMAND`
is the PID namespace's first process. It mounts binfmt_misc on DIR, registers QEMU for ARCH's ELF files
with the F and P flags (see register_line), starts COMMAND and
stays as its init: it reaps orphans, and exits when COMMAND exits or when its stdin, a pipe whose other end
only the caller holds, closes. When it exits the kernel kills every process in the namespace. So stopping
is closing the pipe, and a caller that dies for any reason (SIGKILL included) ends the namespace too.
Where the kernel refuses the mount (EPERM or ENODEV: before Linux 6.7, or without binfmt_misc) it exits
with UNSUPPORTED_EXIT.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Sequence

from tools import cli
from tools.architectures import ARCHITECTURES

# ELF header bytes that identify a little-endian 64-bit executable or shared object for each architecture,
# and the mask applied before comparing.
ELF_HANDLERS: dict[str, tuple[bytes, bytes]] = {
    name: architecture.binfmt_magic() for name, architecture in ARCHITECTURES.items()}
REGISTER_FLAGS = "PF"
# Identity for the ids images use: root, nonroot (65532) and nobody (65534).
ID_MAP = "0 0 65536\n"
UNSHARE = [
    "unshare", "--user", "--mount", "--net", "--pid", "--fork", "--kill-child", "--mount-proc",
    "--propagation", "private",
]
# unshare execs this before the caller has written the maps. A program exec'd while uid 0 is unmapped
# would have no capabilities in the namespace, so it waits for the caller's word, then execs the rest
# (whose stdin stays the caller's pipe: `read` on a pipe takes no more than its line).
WAIT_FOR_MAPS = 'read -r word && [ "$word" = mapped ] && exec "$@"'
MAPPED = b"mapped\n"
UNSHARED_TIMEOUT = 10.0
UNSUPPORTED_EXIT = 3
# The init's stdin: the caller's pipe, which reaches end of file when the caller closes it or dies.
LIFELINE_FD = 0
# How often the namespace's init looks for exited processes while it waits on the caller's pipe.
REAP_INTERVAL = 0.2


class NamespaceError(Exception):
    """The namespace could not be set up; the message says what failed."""


def escape(data: bytes) -> str:
    """Bytes as binfmt_misc's register file reads them: every byte \\xNN, so none is taken for a ':'."""
    return "".join(f"\\x{byte:02x}" for byte in data)


def handler_name(architecture: str) -> str:
    return ARCHITECTURES[architecture].emulator()


def register_line(architecture: str, emulator: Path) -> str:
    """The line that registers `emulator` for `architecture`'s ELF files.

    F (fix binary): the kernel opens the emulator now, so containers need no copy of it. P (preserve argv[0]):
    without it the program's argv[0] becomes its path, and multi-call binaries (busybox, run as `grep` by
    its own shell) take their first argument for the applet name.
    """
    if architecture not in ELF_HANDLERS:
        raise NamespaceError(f"no ELF magic known for {architecture!r}; known: {', '.join(sorted(ELF_HANDLERS))}")
    magic, mask = ELF_HANDLERS[architecture]
    return f":{handler_name(architecture)}:M::{escape(magic)}:{escape(mask)}:{emulator}:{REGISTER_FLAGS}"


def inner_command(emulator: Path, architecture: str, binfmt_dir: Path, command: Sequence[str]) -> list[str]:
    """What runs inside the namespace once it is mapped: this module's main, which then execs `command`."""
    return [
        sys.executable, "-m", "tools.oci.binfmt_namespace", "--emulator", str(emulator),
        "--architecture", architecture, "--binfmt-dir", str(binfmt_dir), "--", *command,
    ]


def namespace_command(inner: Sequence[str]) -> list[str]:
    return [*UNSHARE, "--", "sh", "-c", WAIT_FOR_MAPS, "sh", *inner]


def wait_until_unshared(pid: int, timeout: float = UNSHARED_TIMEOUT) -> None:
    """Waits until process `pid` is in a user namespace other than ours."""
    ours = os.readlink("/proc/self/ns/user")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.readlink(f"/proc/{pid}/ns/user") != ours:
                return
        except FileNotFoundError:
            raise NamespaceError("unshare exited before it created the user namespace") from None
        time.sleep(0.01)
    raise NamespaceError(f"unshare did not create a user namespace within {timeout:.0f} s")


def write_id_maps(pid: int, proc: Path = Path("/proc")) -> None:
    for name in ("uid_map", "gid_map"):
        try:
            (proc / str(pid) / name).write_text(ID_MAP)
        except OSError as error:
            raise NamespaceError(f"cannot write {name} of the namespace (needs real root): {error}") from error


def start(
    command: Sequence[str], emulator: Path, architecture: str, binfmt_dir: Path, output: IO[bytes] | int | None = None
) -> subprocess.Popen[bytes]:
    """Starts `command` in a new namespace with `emulator` registered for `architecture`; returns unshare's process.

    `binfmt_dir` must be an empty directory; binfmt_misc is mounted on it inside the namespace only.
    The process's output (and the command's) goes to `output`. The process's stdin is the namespace's
    lifeline: keep it open while the namespace should live; `stop` closes it.
    """
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    process = subprocess.Popen(
        namespace_command(inner_command(emulator, architecture, binfmt_dir, command)),
        stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT if output is not None else None,
        env=environment, start_new_session=True,
    )
    assert process.stdin is not None
    try:
        wait_until_unshared(process.pid)
        write_id_maps(process.pid)
        process.stdin.write(MAPPED)
        process.stdin.flush()
    except BaseException:
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Ends the namespace: closing the lifeline makes its init exit, and the kernel kills everything else in
    it; unshare, which waits for the init, then exits. SIGKILL to unshare if that takes longer than `timeout`."""
    if process.stdin is not None and not process.stdin.closed:
        process.stdin.close()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def check_supported(emulator: Path, architecture: str, binfmt_dir: Path) -> str | None:
    """Tries the whole setup with `true` as the command: None if it works, the kernel's refusal if binfmt_misc
    cannot be mounted in a user namespace here. Any other failure raises NamespaceError."""
    process = start(["true"], emulator, architecture, binfmt_dir, output=subprocess.PIPE)
    assert process.stdout is not None
    output = process.stdout.read().decode(errors="replace").strip()
    status = process.wait()
    stop(process)
    if status == 0:
        return None
    if status == UNSUPPORTED_EXIT:
        return output
    raise NamespaceError(f"setting up a user namespace with its own binfmt_misc failed (exit {status}):\n{output}")


# --- Inside the namespace -------------------------------------------------------------------------------


def mount_binfmt_misc(directory: Path) -> int:
    """Mounts a binfmt_misc instance on `directory`; returns 0 or the mount's errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"binfmt_misc", os.fsencode(directory), b"binfmt_misc", 0, None) == 0:
        return 0
    return ctypes.get_errno()


def register(directory: Path, architecture: str, emulator: Path) -> None:
    (directory / "register").write_text(register_line(architecture, emulator))
    status = (directory / handler_name(architecture)).read_text()
    if not status.startswith("enabled"):
        raise NamespaceError(f"the {handler_name(architecture)} handler is not enabled after registering:\n{status}")


def supervise(command: Sequence[str], lifeline: int) -> int:
    """Runs `command` as the namespace's init would: reaps every process that ends, and returns the command's
    exit status, or 0 as soon as `lifeline` reaches end of file (the caller stopped or died)."""
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    while True:
        readable, _, _ = select.select([lifeline], [], [], REAP_INTERVAL)
        if readable and not os.read(lifeline, 1024):
            return 0
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return 0
            if pid == 0:
                break
            if pid == child.pid:
                return os.waitstatus_to_exitcode(status)


@cli.tool("binfmt_namespace", NamespaceError)
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emulator", type=Path, required=True, help="static qemu user-mode emulator")
    parser.add_argument("--architecture", required=True, choices=sorted(ELF_HANDLERS))
    parser.add_argument("--binfmt-dir", type=Path, required=True, help="empty directory to mount binfmt_misc on")
    parser.add_argument("command", nargs="+", help="the command to exec once the emulator is registered")
    args = parser.parse_args(argv)
    failure = mount_binfmt_misc(args.binfmt_dir)
    if failure in (errno.EPERM, errno.ENODEV):
        print(f"binfmt_misc cannot be mounted in a user namespace here ({os.strerror(failure)}; Linux 6.7 or "
              f"later mounts one per user namespace, kernel {os.uname().release})", file=sys.stderr)
        return UNSUPPORTED_EXIT
    if failure:
        raise NamespaceError(f"mounting binfmt_misc on {args.binfmt_dir} failed: {os.strerror(failure)}")
    try:
        register(args.binfmt_dir, args.architecture, args.emulator)
    except (OSError, NamespaceError) as error:
        raise NamespaceError(f"registering {args.emulator} failed: {error}") from None
    sys.stdout.flush()
    return supervise(args.command, LIFELINE_FD)


if __name__ == "__main__":
    raise SystemExit(main())
