"""The full remote-execution test (tagged manual: about ten minutes on two cores):

    tools/bazel test //tools/remote:remote_integration_test

Against a real BuildGrid with two buildbox workers running in the build root (tools/remote/cluster), with
nested Bazel servers of their own (output user root and output bases in the test's temporary directory):

0. a clean local build of //python:3.13 (amd64 and arm64): the reference index digest and time;
1. a clean output base builds it with --config=remote: actions execute remotely, on both workers (their
   logs count the actions each ran), and the index digest equals the local build's;
2. a second clean output base gets every action from the remote cache (100 %);
3. a third clean output base builds with a cache salt (every action misses the cache), and one worker is
   killed with SIGKILL while it executes an action: the build must finish on the other worker, with the
   same digest.

It prints the figures the README's "Building remotely" section quotes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.remote import cluster
from tools.remote.nested_bazel import (NestedBazel, Result, digest_of, executed_locally, remote_flags, unique_salt,
                                       workspace_from_runfiles)

TARGET = "//python:3.13"
INDEX = "python/3.13/index.json"


def cache_dir(scratch: Path) -> Path:
    configured = os.environ.get(cluster.CACHE_VARIABLE)
    return Path(configured) if configured else scratch / "cache"


def du(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


def check_built(result: Result, bazel: NestedBazel, reference: str, what: str) -> None:
    assert result.returncode == 0, f"{what}: the build failed; its output is above"
    digest = digest_of(bazel.bin_path(INDEX))
    assert digest == reference, f"{what}: index.json {digest} differs from the local build's {reference}"


def kill_a_worker_mid_action(state: cluster.State, logs: dict[str, Path], build: "subprocess.Popen[str]",
                             after: int = 4, timeout: float = 600) -> str:
    """Waits until the workers have finished `after` actions of this build and one of them is executing another,
    kills that one (SIGKILL, with its casd), and returns its name."""
    done_before = sum(cluster.executed_jobs(log) for log in logs.values())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and build.poll() is None:
        if sum(cluster.executed_jobs(log) for log in logs.values()) - done_before >= after:
            for name in logs:
                if cluster.running_jobs(state, name) > 0:
                    cluster.kill_worker(state, name)
                    print(f"killed {name} (SIGKILL) while it executed an action", file=sys.stderr, flush=True)
                    return name
        time.sleep(0.05)
    raise AssertionError("no worker was seen executing an action (after the first ones) before the build ended; "
                         "nothing was killed, so worker loss was NOT tested")


def test_remote_execution_cache_and_worker_loss() -> None:
    scratch = Path(os.environ["TEST_TMPDIR"])
    workspace = workspace_from_runfiles(dict(os.environ))
    state_dir = scratch / "cluster"
    figures: list[str] = []
    bazels = [NestedBazel(workspace, scratch, name) for name in ("local", "remote", "cache-hit", "worker-loss")]
    local, remote, hit, loss = bazels
    try:
        built = local.run("build", TARGET)
        assert built.returncode == 0, "the local build failed"
        reference = digest_of(local.bin_path(INDEX))
        local.shutdown()
        figures.append(f"clean build, local: {built.seconds:.1f} s {built.processes}")

        with cluster.cluster(state_dir, workers=2, cache=cache_dir(scratch)) as state:
            logs = {name: state_dir / f"{name}.log" for name in cluster.worker_names(2)}
            cas = state_dir / "run" / "cas"
            first = remote.run("build", *remote_flags(state.port), TARGET)
            check_built(first, remote, reference, "remote build")
            counts = first.processes
            assert counts.get("remote", 0) > 0, f"no action executed remotely: {counts}"
            jobs = {name: cluster.executed_jobs(log) for name, log in logs.items()}
            assert all(count > 0 for count in jobs.values()), f"each worker must have executed actions: {jobs}"
            remote.shutdown()
            cas_bytes = du(cas)
            figures.append(f"clean build, remote (2 workers): {first.seconds:.1f} s {counts}; actions per worker "
                           f"{jobs}; BuildGrid's CAS after it (inputs Bazel uploaded, outputs and local results): "
                           f"{cas_bytes / 1e6:.1f} MB")

            second = hit.run("build", *remote_flags(state.port), TARGET)
            check_built(second, hit, reference, "cache-hit build")
            counts = second.processes
            non_internal = counts["total"] - counts.get("internal", 0)
            assert counts.get("remote cache hit", 0) == non_internal > 0, \
                f"a clean output base must get every action from the remote cache: {counts}"
            assert executed_locally(counts) == 0 and counts.get("remote", 0) == 0, counts
            hit.shutdown()
            growth = du(cas) - cas_bytes
            figures.append(f"clean output base, remote cache filled: {second.seconds:.1f} s {counts} "
                           f"({counts.get('remote cache hit', 0)} of {non_internal} non-internal processes hit); "
                           f"CAS growth {growth} bytes")

            log = scratch / "worker-loss.log"
            build = loss.start("build", *remote_flags(state.port, "--remote_default_exec_properties="
                                                      f"{cluster.SALT_PROPERTY}={unique_salt()}"), TARGET, log=log)
            try:
                killed = kill_a_worker_mid_action(state, logs, build)
                survivor = next(name for name in logs if name != killed)
                before = cluster.executed_jobs(logs[survivor])
                third = loss.finish(build, log)
            finally:
                if build.poll() is None:
                    build.kill()
            check_built(third, loss, reference, "build with a worker killed")
            after = cluster.executed_jobs(logs[survivor])
            assert third.processes.get("remote", 0) > 0, third.processes
            assert after > before, f"{survivor} executed nothing after {killed} was killed ({before} -> {after})"
            figures.append(f"worker killed mid-action: {killed}; build finished in {third.seconds:.1f} s "
                           f"{third.processes}; {survivor} executed {after - before} actions after the kill")
        for process in state.processes:
            assert not cluster.group_alive(process.pgid), f"{process.name} still runs after the cluster stopped"
        strays = [line for place in (state.directory, *state.scratch) for line in cluster.leftovers(Path(place))]
        assert strays == [], f"processes left in the cluster's directories: {strays}"
        assert cluster.mounts_under(Path(state.directory)) == [], "mounts left in the cluster's directory"
    finally:
        # Nothing stays behind: no server, and no output base in the outer execroot's test directory.
        for bazel in bazels:
            bazel.remove()
        shutil.rmtree(local.user_root, ignore_errors=True)
    print("\nFIGURES\n" + "\n".join(figures) + f"\nindex digest (all builds): {reference}")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"]))
