"""Unit tests of the local cluster's pieces, the BuildGrid lock writer and the nested-Bazel helpers."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import build_root
from tools.remote import cluster, lock_buildgrid, nested_bazel


class TaggedLoader(yaml.SafeLoader):
    """Reads BuildGrid's `!tag` objects as {"!tag": mapping}, so the configuration's shape can be checked."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value = loader.construct_mapping(node, deep=True) if isinstance(node, yaml.MappingNode) else None
    return {"!" + suffix: value}


TaggedLoader.add_multi_constructor("!", _tagged)


def test_buildgrid_config_serves_every_service_on_loopback_only(tmp_path: Path) -> None:
    config = yaml.load(cluster.buildgrid_config(50123, tmp_path / "cas", "postgresql+psycopg://bgd@/bgd?host=/x"),
                       Loader=TaggedLoader)
    [channel] = config["server"]
    assert channel["!channel"]["address"] == "127.0.0.1:50123"
    [instance] = config["instances"]
    assert instance["name"] == ""
    services = {next(iter(service)) for service in instance["services"]}
    assert services == {"!execution", "!bots", "!action-cache", "!cas", "!bytestream"}
    [scheduler] = config["schedulers"]
    properties = scheduler["!sql-scheduler"]["property-set"]["!dynamic-property-set"]
    assert cluster.SALT_PROPERTY in properties["wildcard-property-keys"]
    assert config["storages"][0]["!disk-storage"]["path"] == str(tmp_path / "cas")
    assert config["connections"][0]["!sql-connection"]["connection-string"].startswith("postgresql+psycopg://")


def test_worker_commands_use_the_hosttools_runner_and_a_casd_of_their_own(tmp_path: Path) -> None:
    socket_path = tmp_path / "casd.sock"
    casd = cluster.casd_command("http://127.0.0.1:1", socket_path, tmp_path / "cache")
    assert casd[0] == "buildbox-casd" and f"--bind=unix:{socket_path}" in casd and casd[-1] == str(tmp_path / "cache")
    worker = cluster.worker_command("http://127.0.0.1:1", socket_path, "worker-7")
    assert worker[0] == "buildbox-worker" and worker[-1] == "worker-7"
    assert "--buildbox-run=/usr/bin/buildbox-run-hosttools" in worker
    assert f"--cas-remote=unix:{socket_path}" in worker
    assert cluster.worker_names(2) == ["worker-1", "worker-2"]


def test_state_round_trips(tmp_path: Path) -> None:
    state = cluster.State(1, str(tmp_path), [cluster.Process("a", 123, "a.log")], ["/tmp/x"])
    state.save()
    assert cluster.State.load(tmp_path) == state
    assert cluster.State.load(tmp_path / "none") is None


def test_down_stops_every_process_group_and_removes_scratch(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (tmp_path / "run" / "cas").mkdir(parents=True)
    state = cluster.State(1, str(tmp_path), scratch=[str(scratch)])
    # A group with a child that ignores SIGTERM: down must escalate to SIGKILL.
    cluster.start(state, "stubborn", ["sh", "-c", "trap '' TERM; sleep 60 & wait"])
    cluster.start(state, "plain", ["sleep", "60"])
    time.sleep(0.3)
    pgids = [process.pgid for process in state.processes]
    assert all(cluster.group_alive(pgid) for pgid in pgids)
    started = time.monotonic()
    assert cluster.down(tmp_path) == 2
    assert not any(cluster.group_alive(pgid) for pgid in pgids)
    assert time.monotonic() - started < 30
    assert not scratch.exists() and not (tmp_path / "run").exists() and cluster.State.load(tmp_path) is None
    assert (tmp_path / "stubborn.log").exists()
    assert cluster.down(tmp_path) == 0


def test_stopping_the_cluster_keeps_the_callers_own_exit_statuses(tmp_path: Path) -> None:
    mine = subprocess.Popen(["sh", "-c", "exit 3"])
    time.sleep(0.2)  # it has exited, unreaped
    state = cluster.State(1, str(tmp_path))
    cluster.start(state, "worker-1", ["sleep", "60"])
    cluster.down(tmp_path)
    assert mine.wait() == 3


def test_stop_group_also_stops_descendants_that_left_the_group(tmp_path: Path) -> None:
    state = cluster.State(1, str(tmp_path))
    marker = tmp_path / "escaped.pid"
    # The child starts a session of its own, as an action a runner starts may; killpg alone would miss it.
    escape = (f"import os, subprocess, time; child = subprocess.Popen(['sleep', '60'], start_new_session=True, "
              f"cwd={str(tmp_path)!r}); open({str(marker)!r}, 'w').write(str(child.pid)); time.sleep(60)")
    cluster.start(state, "worker-1", [sys.executable, "-c", escape])
    deadline = time.monotonic() + 10
    while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    escaped = int(marker.read_text())
    assert escaped in {info.pid for info in cluster.process_tree(state.processes[0].pgid)}
    assert any(line.startswith(f"{escaped} ") for line in cluster.leftovers(tmp_path))
    cluster.stop_group(state.processes[0].pgid, grace=1)
    table = cluster.processes()
    assert escaped not in table or table[escaped].state == "Z"
    cluster.down(tmp_path)
    assert cluster.leftovers(tmp_path) == []


def test_mounts_under_reads_mountinfo_with_escapes(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 0:21 / / rw - ext4 /dev/vda rw\n"
        f"152 22 0:49 / {tmp_path}/run/worker-1/cache/cas/staging/cas-tmpdirX rw - fuse /dev/fuse rw\n"
        f"153 22 0:50 / {tmp_path}/run/with\\040space rw - fuse /dev/fuse rw\n"
        f"154 22 0:51 / {tmp_path}-other rw - tmpfs tmpfs rw\n")
    assert cluster.mounts_under(tmp_path, mountinfo) == [f"{tmp_path}/run/worker-1/cache/cas/staging/cas-tmpdirX",
                                                         f"{tmp_path}/run/with space"]


def test_running_jobs_sees_a_runner_in_the_workers_group(tmp_path: Path) -> None:
    state = cluster.State(1, str(tmp_path))
    # worker-1 has a child whose command line names the runner, as a worker executing a job does.
    spawn_runner = ("import subprocess; subprocess.Popen(['buildbox-run-hosttools', '60'], "
                    "executable='sleep').wait()")
    cluster.start(state, "worker-1", [sys.executable, "-c", spawn_runner])
    cluster.start(state, "worker-2", ["sleep", "60"])
    try:
        deadline = time.monotonic() + 10
        while cluster.running_jobs(state, "worker-1") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cluster.running_jobs(state, "worker-1") == 1
        assert cluster.running_jobs(state, "worker-2") == 0
        assert cluster.running_jobs(state, "worker-3") == 0
        cluster.kill_worker(state, "worker-1")
        assert not cluster.group_alive(state.processes[0].pgid)
        assert cluster.group_alive(state.processes[1].pgid)
    finally:
        cluster.down(tmp_path)


def test_executed_jobs_and_registration_come_from_the_logs(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text("[INFO] Runner exited with code 0\n[INFO] Runner exited with code 1\n")
    assert cluster.executed_jobs(log) == 2
    assert cluster.executed_jobs(tmp_path / "missing.log") == 0
    buildgrid = tmp_path / "buildgrid.log"
    buildgrid.write_text('Received request. correlated_invocations_id="worker-1" method="CreateBotSession"\n'
                         'Received request. correlated_invocations_id="worker-2" method="UpdateBotSession"\n')
    assert cluster.worker_registered(buildgrid, "worker-1")
    assert not cluster.worker_registered(buildgrid, "worker-2")


def test_up_refuses_a_port_in_use(tmp_path: Path) -> None:
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(cluster.ClusterError, match="in use"):
            cluster.up(tmp_path, busy.getsockname()[1], 2)


def test_requirements_are_fully_hash_pinned() -> None:
    lines = cluster.REQUIREMENTS.read_text().replace("\\\n", "").splitlines()
    pins = [line for line in lines if line and not line.startswith("#")]
    assert any(line.startswith("buildgrid==") for line in pins)
    for line in pins:
        assert re.match(r"^[a-z0-9-]+==\S+( +--hash=sha256:[0-9a-f]{64})+$", line), line
    assert cluster.count_requirements(cluster.REQUIREMENTS) == len(pins)


def test_venv_key_follows_the_requirements(tmp_path: Path) -> None:
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_text("a==1 --hash=sha256:" + "0" * 64 + "\n")
    two.write_text("a==2 --hash=sha256:" + "0" * 64 + "\n")
    assert cluster.requirements_key(one) != cluster.requirements_key(two)
    command = cluster.venv_install_command("/usr/bin/python3", tmp_path / "venv", one)
    assert "--require-hashes" in command and "--no-deps" in command and command[-1] == str(one)


def test_main_status_without_a_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cluster.main(["status", "--state", str(tmp_path)], {}) == 1
    assert "no cluster" in capsys.readouterr().out


def test_lock_platform_tags_cover_old_and_new_manylinux() -> None:
    tags = lock_buildgrid.platform_tags("x86_64", 41)
    assert tags[0] == "manylinux_2_41_x86_64" and "manylinux_2_17_x86_64" in tags and "manylinux2014_x86_64" in tags
    assert "manylinux1_aarch64" not in lock_buildgrid.platform_tags("aarch64", 41)


def _report(*items: tuple[str, str, str]) -> dict[str, Any]:
    return {"install": [{"metadata": {"name": name, "version": version},
                         "download_info": {"archive_info": {"hashes": {"sha256": digest}}}}
                        for name, version, digest in items]}


def test_lock_merges_platform_hashes_and_renders_require_hashes_format() -> None:
    amd64 = lock_buildgrid.pins_from_report(_report(("Foo_Bar", "1.0", "a" * 64), ("pure", "2", "c" * 64)))
    arm64 = lock_buildgrid.pins_from_report(_report(("foo-bar", "1.0", "b" * 64), ("pure", "2", "c" * 64)))
    merged = lock_buildgrid.merge([amd64, arm64])
    assert merged == {("foo-bar", "1.0"): {"a" * 64, "b" * 64}, ("pure", "2"): {"c" * 64}}
    text = lock_buildgrid.render("x==1", "3.14", merged)
    assert f"foo-bar==1.0 \\\n    --hash=sha256:{'a' * 64} \\\n    --hash=sha256:{'b' * 64}\n" in text


def test_lock_refuses_platforms_that_resolve_different_versions() -> None:
    with pytest.raises(SystemExit, match="different versions of foo"):
        lock_buildgrid.merge([lock_buildgrid.pins_from_report(_report(("foo", "1", "a" * 64))),
                              lock_buildgrid.pins_from_report(_report(("foo", "2", "b" * 64)))])


@pytest.mark.parametrize("output, expected", [
    ("INFO: 52 processes: 34 internal, 4 linux-sandbox, 14 remote.\n",
     {"total": 52, "internal": 34, "linux-sandbox": 4, "remote": 14}),
    ("x\nINFO: 52 processes: 18 remote cache hit, 34 internal.\nINFO: Build completed successfully\n",
     {"total": 52, "remote cache hit": 18, "internal": 34}),
    ("INFO: 1 process: 1 internal.\n", {"total": 1, "internal": 1}),
    ("INFO: 0 processes.\n", {"total": 0}),
    ("no summary\n", {}),
])
def test_process_summary(output: str, expected: dict[str, int]) -> None:
    assert nested_bazel.process_summary(output) == expected


def test_executed_locally_counts_only_local_strategies() -> None:
    assert nested_bazel.executed_locally({"total": 9, "internal": 3, "linux-sandbox": 2, "local": 1, "remote": 3}) == 3


def test_remote_flags() -> None:
    assert nested_bazel.remote_flags(5, "--x") == ["--config=remote", "--remote_executor=grpc://127.0.0.1:5", "--x"]


def test_nested_bazel_gets_what_tools_bazel_passes(tmp_path: Path) -> None:
    passed = {*build_root.PASSED_VARIABLES, *build_root.MIRROR_VARIABLES}
    environ = {name: f"value of {name}" for name in passed} | {"PATH": "/bin", "LANG": "C.UTF-8", "SECRET": "x"}
    env = nested_bazel.nested_environment(environ, tmp_path)
    assert env == {name: f"value of {name}" for name in passed} | {"PATH": "/bin", "LANG": "C.UTF-8",
                                                                   "HOME": str(tmp_path)}
    assert {"DEBIAN_MIRROR", "DEBIAN_SNAPSHOT_MIRROR", "PIP_INDEX_URL"} <= env.keys()


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
