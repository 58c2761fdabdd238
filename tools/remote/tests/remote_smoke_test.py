"""The small remote-execution test `tools/bazel test //...` runs: a real BuildGrid with two buildbox workers
(tools/remote/cluster), a nested Bazel that builds two of the images' layers with --config=remote, and a
second clean output base that must get every action from the remote cache. The full test (both
architectures of //python:3.13, a killed worker) is remote_integration_test, run on demand.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tools.remote import cluster
from tools.remote.nested_bazel import NestedBazel, digest_of, executed_locally, remote_flags, workspace_from_runfiles

TARGETS = {"//python:base_files": "python/base_files.tar.gz",
           "//python:3.13_amd64_python_symlinks": "python/3.13_amd64_python_symlinks.tar.gz"}


def runfile(relative: str) -> Path:
    return Path(os.environ["TEST_SRCDIR"]) / "_main" / relative


def cache_dir(scratch: Path) -> Path:
    configured = os.environ.get(cluster.CACHE_VARIABLE)
    if not configured:
        print(f"NOTE: {cluster.CACHE_VARIABLE} is not set (not run through tools/bazel): BuildGrid is installed "
              "into the test's temporary directory", file=sys.stderr)
        return scratch / "cache"
    return Path(configured)


def test_remote_build_then_remote_cache_hits() -> None:
    scratch = Path(os.environ["TEST_TMPDIR"])
    workspace = workspace_from_runfiles(dict(os.environ))
    state_dir = scratch / "cluster"
    with cluster.cluster(state_dir, workers=2, cache=cache_dir(scratch)) as state:
        with NestedBazel(workspace, scratch, "first") as first, NestedBazel(workspace, scratch, "second") as second:
            built = first.run("build", *remote_flags(state.port), *TARGETS)
            assert built.returncode == 0, "the remote build failed; its output is above"
            counts = built.processes
            assert counts.get("remote", 0) >= len(TARGETS), f"expected remote executions, got {counts}"
            assert executed_locally(counts) == 0, f"actions ran locally: {counts}"
            jobs = {name: cluster.executed_jobs(state_dir / f"{name}.log") for name in cluster.worker_names(2)}
            assert sum(jobs.values()) >= len(TARGETS), f"the workers' logs show {jobs} executed actions"
            for label, relative in TARGETS.items():
                local = digest_of(runfile(relative))
                assert digest_of(first.bin_path(relative)) == local, f"{label} differs from the local build"

            hit = second.run("build", *remote_flags(state.port), *TARGETS)
            assert hit.returncode == 0
            counts = hit.processes
            non_internal = counts["total"] - counts.get("internal", 0)
            assert non_internal > 0 and counts.get("remote cache hit", 0) == non_internal, \
                f"a clean output base should get every action from the remote cache: {counts}"
            for label, relative in TARGETS.items():
                assert digest_of(second.bin_path(relative)) == digest_of(runfile(relative)), label
    shutil.rmtree(first.user_root, ignore_errors=True)
    for process in state.processes:
        assert not cluster.group_alive(process.pgid), f"{process.name} is still running after the cluster stopped"
    strays = [line for place in (state.directory, *state.scratch) for line in cluster.leftovers(Path(place))]
    assert strays == [], f"processes left in the cluster's directories: {strays}"
    assert cluster.mounts_under(Path(state.directory)) == [], "mounts left in the cluster's directory"
    assert not any(Path(path).exists() for path in state.scratch)
    assert not (state_dir / "run").exists() and not first.output_base.exists() and not second.output_base.exists()
    print(f"remote build {built.seconds:.1f} s, cache-hit build {hit.seconds:.1f} s, workers' jobs {jobs}")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"]))
