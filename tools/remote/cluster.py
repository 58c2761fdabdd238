"""A local REAPI cluster: BuildGrid (execution, CAS, action cache) and buildbox workers, on 127.0.0.1.

    tools/remote/cluster up [--workers N] [--port PORT]    # prints the --remote_executor to use
    tools/remote/cluster status
    tools/remote/cluster down

It runs inside the build root (tools/remote/cluster enters it through `tools/bazel run`, and Bazel tests run
in it already), so the workers execute actions with the root's pinned tools, as a local build does.

- **BuildGrid** (Apache BuildGrid, from PyPI, installed hash-pinned from buildgrid_requirements.txt into a
  venv in the cache directory on first use) serves Execution, Bots, CAS, ByteStream, ActionCache and
  Capabilities on 127.0.0.1:PORT, with its CAS on disk in the state directory. Its scheduler keeps job state
  only in PostgreSQL (BuildGrid 0.9 refuses SQLite), so the cluster runs a private PostgreSQL server
  (Debian's postgresql-18, as the `postgres` user) listening on a Unix socket in the state directory only.
- **Workers**: each is Debian's buildbox-worker with its own buildbox-casd (a local CAS proxy) and the
  hosttools runner (buildbox-run-hosttools), which runs each action in a staged input root on this root.

Every process is started in a process group of its own, recorded in STATE/cluster.json; `down` (and the
`Cluster` context manager's exit, and SIGTERM/SIGINT/SIGHUP while it is active) stops every group, waits for
it, and escalates to SIGKILL, so nothing keeps running.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Callable, Iterable, Iterator, Sequence

from tools import cli
from tools.atomic_file import write_atomically

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "buildgrid_requirements.txt"
DEFAULT_PORT = 50051
DEFAULT_WORKERS = 2
POSTGRES_BIN = Path("/usr/lib/postgresql/18/bin")
POSTGRES_USER = "postgres"
# Where the venv lives: tools/build_root.py passes this into the root (a directory of the cache, per root,
# since the venv belongs to the root's Python). Without it the venv goes under the state directory.
CACHE_VARIABLE = "DISTROLESS_REMOTE_CACHE"
STATE_FILE = "cluster.json"
# An execution property the server accepts and ignores: `--remote_default_exec_properties=cache-salt=X`
# gives every action a new digest, so a build executes again instead of hitting the cache.
SALT_PROPERTY = "cache-salt"


class ClusterError(Exception):
    """A problem the user must fix; the message says what and how."""


def log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


# --- BuildGrid's venv -------------------------------------------------------------------------------

def requirements_key(requirements: Path = REQUIREMENTS) -> str:
    """Names the venv: a new requirements file gets a new venv; a partial one is never reused."""
    return hashlib.sha256(requirements.read_bytes() + sys.version.encode()).hexdigest()[:12]


def venv_install_command(python: str, venv: Path, requirements: Path) -> list[str]:
    # The root's pip installs into the venv (the venv itself has no pip: Debian's python3 without
    # python3-venv cannot create one with pip). --require-hashes: every file is checked against the lock.
    return [python, "-m", "pip", "--python", str(venv / "bin/python"), "install", "--require-hashes", "--no-deps",
            "--only-binary=:all:", "--progress-bar=on", "-r", str(requirements)]


def ensure_buildgrid(cache: Path, requirements: Path = REQUIREMENTS) -> Path:
    """The venv's bgd executable; creates the venv the first time, saying so."""
    venv = cache / f"buildgrid-{requirements_key(requirements)}"
    done = venv / ".complete"
    if done.exists():
        return venv / "bin/bgd"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".buildgrid.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():  # another cluster installed it while this one waited
            return venv / "bin/bgd"
        shutil.rmtree(venv, ignore_errors=True)
        log(f"installing BuildGrid and its dependencies ({count_requirements(requirements)} hash-pinned "
            f"packages) into {venv}; this happens once")
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        result = subprocess.run(venv_install_command(sys.executable, venv, requirements))
        if result.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise ClusterError(f"pip could not install {requirements} (exit {result.returncode}; its messages are "
                               "above). Check PyPI access (pip's own configuration, PIP_INDEX_URL), or re-lock the "
                               "file with tools/remote/lock_buildgrid.py.")
        done.write_text("")
        log(f"BuildGrid installed in {time.monotonic() - started:.0f} s")
    return venv / "bin/bgd"


def count_requirements(requirements: Path) -> int:
    return sum(1 for line in requirements.read_text().splitlines() if "==" in line and not line.startswith("#"))


# --- Configuration ----------------------------------------------------------------------------------

def buildgrid_config(port: int, cas_dir: Path, database: str) -> str:
    """BuildGrid's server configuration: one unnamed instance with every service Bazel and buildbox use."""
    return f"""\
description: distroless-python local cluster (tools/remote/cluster)
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
authorization:
  method: none
connections:
  - !sql-connection &sql
    connection-string: {database}
    pool-size: 10
    max-overflow: 10
storages:
  - !disk-storage &cas
    path: {cas_dir}
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
schedulers:
  - !sql-scheduler &scheduler
    sql: *sql
    action-cache: *ac
    storage: *cas
    # A worker that stops answering for this long loses its leases, which go to another worker.
    bot-session-keepalive-timeout: 15
    property-set: !dynamic-property-set
      match-property-keys: [OSFamily, ISA]
      # Accepted, not matched: a value changes every action's digest (a build that bypasses the cache).
      wildcard-property-keys: [{SALT_PROPERTY}]
    assigners:
      - !priority-age-assigner
        count: 1
        interval: 0.1
        priority-assignment-percentage: 100
instances:
  - name: ""
    services:
      - !execution
        scheduler: *scheduler
      - !bots
        scheduler: *scheduler
      - !action-cache
        cache: *ac
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
thread-pool-size: 40
"""


@dataclass
class Process:
    name: str
    pgid: int
    log: str


@dataclass
class State:
    port: int
    directory: str
    processes: list[Process] = field(default_factory=list)
    scratch: list[str] = field(default_factory=list)  # directories outside `directory` that `down` removes

    def save(self) -> None:
        write_atomically(Path(self.directory) / STATE_FILE, json.dumps(asdict(self), indent=1))

    @staticmethod
    def load(directory: Path) -> "State | None":
        path = directory / STATE_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return State(data["port"], data["directory"], [Process(**p) for p in data["processes"]],
                     data.get("scratch", []))


def worker_names(count: int) -> list[str]:
    return [f"worker-{number}" for number in range(1, count + 1)]


def casd_command(remote: str, socket_path: Path, cache: Path) -> list[str]:
    return ["buildbox-casd", f"--cas-remote={remote}", f"--bind=unix:{socket_path}", "--quota-high=4G",
            "--log-level=info", str(cache)]


def worker_command(remote: str, casd_socket: Path, name: str) -> list[str]:
    return ["buildbox-worker", f"--bots-remote={remote}", f"--cas-remote=unix:{casd_socket}",
            "--buildbox-run=/usr/bin/buildbox-run-hosttools", "--platform", "OSFamily=linux",
            "--platform", f"ISA={os.uname().machine}", "--max-wait-time=5", "--log-level=info", name]


# --- Processes --------------------------------------------------------------------------------------

def start(state: State, name: str, command: Sequence[str], user: str | None = None,
          env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Starts `command` in a process group of its own, logging to STATE/NAME.log, and records the group."""
    log_path = Path(state.directory) / f"{name}.log"
    with open(log_path, "ab") as output:
        process = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True, env=env, cwd=state.directory,
                                   user=user, group=user, extra_groups=[] if user else None)
    state.processes.append(Process(name, process.pid, str(log_path)))
    state.save()
    return process


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (a zombie, exited but not yet collected, does not)."""
    return any(info.pgid == pgid and info.state != "Z" for info in processes().values())


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgid: int
    start: int  # start time in clock ticks since boot: tells a process from a later one with its pid
    state: str


def processes(proc: Path = Path("/proc")) -> dict[int, ProcInfo]:
    """Every process on the machine (of this pid namespace), from /proc/PID/stat."""
    found = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            # After the command name (which may hold spaces and parentheses): state, ppid, pgrp, ..., starttime.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            found[int(entry.name)] = ProcInfo(int(entry.name), int(fields[1]), int(fields[2]), int(fields[19]),
                                              fields[0])
    return found


def process_tree(pgid: int, table: dict[int, ProcInfo] | None = None) -> list[ProcInfo]:
    """The group's processes and all their descendants, even those that left the group (a runner's action may
    start a session of its own)."""
    table = processes() if table is None else table
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    pending = [info.pid for info in table.values() if info.pgid == pgid]
    tree: dict[int, ProcInfo] = {}
    while pending:
        pid = pending.pop()
        if pid in tree or pid not in table:
            continue
        tree[pid] = table[pid]
        pending += children.get(pid, [])
    return list(tree.values())


def alive(info: ProcInfo, table: dict[int, ProcInfo]) -> bool:
    now = table.get(info.pid)
    return now is not None and now.start == info.start and now.state != "Z"


def signal_all(infos: Sequence[ProcInfo], signum: signal.Signals) -> None:
    table = processes()
    for info in infos:
        if alive(info, table):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(info.pid, signum)


def stop_group(pgid: int, first: signal.Signals = signal.SIGTERM, grace: float = 10) -> None:
    """Stops a process group and every descendant of it: `first`, then SIGKILL after `grace` seconds."""
    known = {info.pid: info for info in process_tree(pgid)}
    signal_all(list(known.values()), first)
    deadline = time.monotonic() + grace
    signum = first
    while True:
        reap(known)
        table = processes()
        # Processes started since the first look are added, so a fork during shutdown does not escape.
        known.update({info.pid: info for info in process_tree(pgid, table)})
        for info in list(known.values()):
            known.update({child.pid: child for child in table.values() if child.ppid == info.pid})
        remaining = [info for info in known.values() if alive(info, table)]
        if not remaining:
            reap(known)
            return
        if signum != signal.SIGKILL and time.monotonic() >= deadline:
            signum = signal.SIGKILL
        if signum == signal.SIGKILL:
            signal_all(remaining, signal.SIGKILL)
        time.sleep(0.05)


def mounts_under(directory: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> list[str]:
    """Mount points at or below `directory` in this mount namespace, deepest first."""
    needle = str(directory.resolve())
    points = []
    for line in mountinfo.read_text().splitlines():
        # Field 5 is the mount point, with space, tab, newline and backslash as octal escapes.
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if point == needle or point.startswith(needle + "/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount_under(directory: Path) -> None:
    """Detaches what a killed buildbox-casd leaves mounted: it stages input trees with FUSE (buildbox-fuse),
    and a FUSE mount whose daemon died stays, unreadable, until unmounted."""
    for point in mounts_under(directory):
        log(f"unmounting {point}, left by a killed buildbox-casd")
        subprocess.run(["umount", "-l", point], check=False)


def leftovers(directory: Path, proc: Path = Path("/proc")) -> list[str]:
    """Processes whose working directory or command line is inside `directory` (e.g. an action a killed
    worker's runner left): "PID command" for each."""
    found = []
    needle = str(directory.resolve())
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            cwd = os.readlink(entry / "cwd")
            if cwd == needle or cwd.startswith(needle + "/") or needle + "/" in command:
                found.append(f"{entry.name} {command}")
    return found


def reap(pids: Iterable[int]) -> None:
    """Collects those of `pids` that are exited children of this process (when `up` and `down` are one process,
    as in a test), so none stays a zombie. Never waits for other children: the caller's own subprocesses keep
    their exit status."""
    for pid in list(pids):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def wait_for(description: str, ready: Callable[[], bool], timeout: float, logs: Sequence[Path] = ()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    tails = "".join(f"\n--- last lines of {path} ---\n" + tail(path) for path in logs)
    raise ClusterError(f"{description} did not become ready within {timeout:.0f} s.{tails}")


def tail(path: Path, lines: int = 25) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- The cluster ------------------------------------------------------------------------------------

def up(directory: Path, port: int, workers: int, cache: Path | None = None) -> State:
    """Starts PostgreSQL, BuildGrid and the workers; returns once the workers have registered."""
    directory = directory.resolve()
    existing = State.load(directory)
    if existing and any(group_alive(p.pgid) for p in existing.processes):
        raise ClusterError(f"a cluster from {directory} is already running; run `tools/remote/cluster down` first.")
    if not port_free(port):
        raise ClusterError(f"127.0.0.1:{port} is in use; pass --port with a free port.")
    for tool in ("buildbox-casd", "buildbox-worker", "buildbox-run-hosttools"):
        if not shutil.which(tool):
            raise ClusterError(f"{tool} is not installed: the cluster must run inside the build root "
                               "(tools/remote/cluster does that; the root's package list has `buildbox`).")
    if not (POSTGRES_BIN / "postgres").exists():
        raise ClusterError(f"{POSTGRES_BIN}/postgres is missing: the build root needs postgresql-18.")
    bgd = ensure_buildgrid(cache or directory)
    shutil.rmtree(directory / "run", ignore_errors=True)
    for old_log in directory.glob("*.log"):
        old_log.unlink()
    run = directory / "run"
    run.mkdir(parents=True)
    state = State(port, str(directory))
    # Unix sockets need short paths (at most 107 bytes), and PostgreSQL's user cannot enter a cache under
    # /root: both go to a fresh directory under /tmp, which `down` removes.
    sockets = Path(tempfile.mkdtemp(prefix="distroless-cluster-", dir="/tmp"))
    sockets.chmod(0o755)
    state.scratch.append(str(sockets))
    state.save()
    remote = f"http://127.0.0.1:{port}"
    try:
        database = start_postgres(state, sockets / "postgres")
        run_checked([str(bgd), "migrate", "apply", database])
        config = run / "buildgrid.yml"
        config.write_text(buildgrid_config(port, run / "cas", database))
        (run / "cas").mkdir()
        # -vv: INFO, which logs each bot session a worker opens (how `up` knows the workers are registered).
        start(state, "buildgrid", [str(bgd), "server", "start", "-vv", str(config)])
        wait_for(f"BuildGrid on 127.0.0.1:{port}", lambda: port_open(port), 60, [Path(state.directory) / "buildgrid.log"])
        for name in worker_names(workers):
            home = run / name
            home.mkdir()
            casd_socket = sockets / f"{name}-casd.sock"
            start(state, f"{name}-casd", casd_command(remote, casd_socket, home / "cache"))
            wait_for(f"{name}'s buildbox-casd", casd_socket.exists, 30, [directory / f"{name}-casd.log"])
            start(state, name, worker_command(remote, casd_socket, name))
        for name in worker_names(workers):
            wait_for(f"{name} registering with BuildGrid", functools.partial(worker_registered, directory / "buildgrid.log", name),
                     60, [directory / f"{name}.log", directory / "buildgrid.log"])
    except BaseException:
        down(directory)
        raise
    return state


def worker_registered(buildgrid_log: Path, name: str) -> bool:
    """Whether BuildGrid has logged a bot session of the worker `name`."""
    with contextlib.suppress(OSError):
        return any('method="CreateBotSession"' in line and f'"{name}"' in line
                   for line in buildgrid_log.read_text(errors="replace").splitlines())
    return False


def start_postgres(state: State, data: Path) -> str:
    """A private PostgreSQL server on a Unix socket in `data` (no TCP listener); returns BuildGrid's URL.

    PostgreSQL refuses to run as root: it runs as the root's `postgres` user.
    """
    account = pwd.getpwnam(POSTGRES_USER)
    data.mkdir()
    os.chown(data, account.pw_uid, account.pw_gid)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    as_postgres = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": [], "env": env}
    run_checked([str(POSTGRES_BIN / "initdb"), "-D", str(data / "db"), "-U", "bgd", "--auth=trust", "--no-sync",
                 "--no-instructions"], **as_postgres)
    start(state, "postgres", [str(POSTGRES_BIN / "postgres"), "-D", str(data / "db"), "-k", str(data),
                              "-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
                              "-c", "full_page_writes=off", "-c", "max_connections=200"],
          user=POSTGRES_USER, env=env)
    wait_for("PostgreSQL", lambda: (data / ".s.PGSQL.5432").exists(), 60, [Path(state.directory) / "postgres.log"])
    wait_for("PostgreSQL accepting connections",
             lambda: subprocess.run([str(POSTGRES_BIN / "pg_isready"), "-h", str(data)], capture_output=True).returncode == 0,
             30, [Path(state.directory) / "postgres.log"])
    run_checked([str(POSTGRES_BIN / "createdb"), "-h", str(data), "-U", "bgd", "bgd"], **as_postgres)
    return f"postgresql+psycopg://bgd@/bgd?host={data}"


def run_checked(command: Sequence[str], **options: object) -> None:
    result = subprocess.run(list(command), capture_output=True, text=True, **options)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise ClusterError(f"{' '.join(command)} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")


def down(directory: Path) -> int:
    """Stops every process group the cluster started (workers first); returns how many were running."""
    state = State.load(directory.resolve())
    if state is None:
        return 0
    running = 0
    order = sorted(state.processes, key=lambda p: {"buildgrid": 1, "postgres": 2}.get(p.name, 0))
    for process in order:
        if group_alive(process.pgid):
            running += 1
            # PostgreSQL's fast shutdown is SIGINT; SIGTERM waits for clients to disconnect.
            stop_group(process.pgid, signal.SIGINT if process.name == "postgres" else signal.SIGTERM)
    # Anything still working in the cluster's directories (nothing should be) is killed, and said.
    for place in [state.directory, *state.scratch]:
        for line in leftovers(Path(place)):
            log(f"killing a process left in {place}: {line}")
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(line.split()[0]), signal.SIGKILL)
    for place in [state.directory, *state.scratch]:
        unmount_under(Path(place))
    for scratch in state.scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    # The CAS and the workers' caches (the logs stay, beside it, for reading after `down`).
    shutil.rmtree(Path(state.directory) / "run", ignore_errors=True)
    (directory / STATE_FILE).unlink(missing_ok=True)
    return running


def kill_worker(state: State, name: str) -> None:
    """Kills one worker and its casd outright (SIGKILL), as a machine that dies would."""
    for process in state.processes:
        if process.name in (name, f"{name}-casd"):
            stop_group(process.pgid, signal.SIGKILL, grace=5)
    unmount_under(Path(state.directory) / "run" / name)


def group_commands(pgid: int, proc: Path = Path("/proc")) -> list[str]:
    """The command lines of the processes in a process group."""
    commands = []
    for info in processes(proc).values():
        if info.pgid == pgid:
            with contextlib.suppress(OSError):
                commands.append((proc / str(info.pid) / "cmdline").read_bytes().replace(b"\0", b" ")
                                .decode(errors="replace"))
    return commands


def running_jobs(state: State, name: str) -> int:
    """How many actions the worker `name` is executing now: its buildbox-run-hosttools children."""
    for process in state.processes:
        if process.name == name:
            return sum("buildbox-run-hosttools" in command and "--validate-parameters" not in command
                       for command in group_commands(process.pgid))
    return 0


def executed_jobs(log_path: Path) -> int:
    """How many actions a worker has finished, from its log."""
    with contextlib.suppress(OSError):
        return log_path.read_text(errors="replace").count("Runner exited with code")
    return 0


@contextlib.contextmanager
def cluster(directory: Path, port: int = 0, workers: int = DEFAULT_WORKERS, cache: Path | None = None) -> Iterator[State]:
    """The cluster for the duration of a `with` block; SIGTERM, SIGINT and SIGHUP stop it too."""
    previous = {}

    def stop(signum: int, frame: FrameType | None) -> None:
        down(directory)
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        previous[signum] = signal.signal(signum, stop)
    try:
        yield up(directory, port or free_port(), workers, cache)
    finally:
        down(directory)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# --- Command line -----------------------------------------------------------------------------------

def default_directory(environ: dict[str, str]) -> Path:
    cache = environ.get(CACHE_VARIABLE)
    return Path(cache) / "cluster" if cache else Path("/tmp/distroless-python-cluster")


@cli.tool("tools/remote/cluster", ClusterError)
def main(argv: Sequence[str], environ: dict[str, str] | None = None) -> int:
    environ = dict(os.environ) if environ is None else environ
    parser = argparse.ArgumentParser(prog="tools/remote/cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="BuildGrid's port on 127.0.0.1")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--state", type=Path, default=None, help="state directory (logs, CAS, database)")
    args = parser.parse_args(argv)
    directory = (args.state or default_directory(environ)).resolve()
    cache = Path(environ[CACHE_VARIABLE]) if environ.get(CACHE_VARIABLE) else None
    if args.command == "up":
        state = up(directory, args.port, args.workers, cache)
        print(f"BuildGrid on 127.0.0.1:{state.port} with {args.workers} workers; logs in {directory}.\n"
              f"Build with: tools/bazel build --config=remote --remote_executor=grpc://127.0.0.1:{state.port} "
              "//python:3.13\nStop with: tools/remote/cluster down")
    elif args.command == "down":
        stopped = down(directory)
        print(f"stopped {stopped} process groups" if stopped else "no cluster was running")
    else:
        found = State.load(directory)
        if found is None:
            print("no cluster")
            return 1
        for process in found.processes:
            print(f"{process.name}: {'running' if group_alive(process.pgid) else 'stopped'} (log {process.log})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
