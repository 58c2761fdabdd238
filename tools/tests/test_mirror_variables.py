"""Mirror variables reach every command of one Bazel server as tools/bazel gives them: changed, set or unset.

A nested Bazel server (tools/remote/nested_bazel.py) on a tiny workspace whose repository rule names its one
target after the DEBIAN_MIRROR and DEBIAN_SNAPSHOT_MIRROR it sees; each query gets its arguments from
build_root.with_mirror_variables, exactly as tools/bazel builds them, and must see that command's values.
"""

from __future__ import annotations

import os
import re
from typing import Iterator

import pytest

from tools import build_root
from tools.remote.nested_bazel import NestedBazel

RULE = '''
def _impl(rctx):
    mirror = rctx.getenv("DEBIAN_MIRROR") or "unset"
    snapshot = rctx.getenv("DEBIAN_SNAPSHOT_MIRROR") or "unset"
    name = "seen_" + "".join([c if c.isalnum() else "_" for c in mirror.elems()]) + "__" + \\
        "".join([c if c.isalnum() else "_" for c in snapshot.elems()])
    rctx.file("BUILD.bazel", 'filegroup(name = "%s", visibility = ["//visibility:public"])\\n' % name)

probe = repository_rule(implementation = _impl)
'''


@pytest.fixture(scope="module")
def bazel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NestedBazel]:
    workspace = tmp_path_factory.mktemp("workspace")
    (workspace / "MODULE.bazel").write_text('module(name = "mirror_probe")\n'
                                            'probe = use_repo_rule("//:probe.bzl", "probe")\n'
                                            'probe(name = "probe")\n')
    (workspace / "BUILD.bazel").write_text("")
    (workspace / "probe.bzl").write_text(RULE)
    with NestedBazel(workspace, tmp_path_factory.mktemp("bazel"), "mirrors") as nested:
        yield nested


def seen(bazel: NestedBazel, environ: dict[str, str]) -> str:
    mirrors = build_root.find_mirrors(environ, [])
    argv = build_root.with_mirror_variables(["query", "@probe//:all"], mirrors, environ)
    result = bazel.run(*argv)
    assert result.returncode == 0, result.output
    return re.findall(r"@probe//:(seen_\w+)", result.output)[0]


def test_a_changed_set_or_unset_mirror_reaches_the_next_command_of_the_same_server(bazel: NestedBazel) -> None:
    # The server starts with one set of values in its own environment, as a long-running server would.
    os.environ["DEBIAN_MIRROR"] = "http://127.0.0.1:1/first"
    first = seen(bazel, {"DEBIAN_MIRROR": "http://127.0.0.1:1/first"})
    assert first == "seen_http___127_0_0_1_1_first__unset"
    assert seen(bazel, {"DEBIAN_MIRROR": "http://127.0.0.1:2/second"}) == "seen_http___127_0_0_1_2_second__unset"
    assert seen(bazel, {"DEBIAN_MIRROR": "http://127.0.0.1:2/second",
                        "DEBIAN_SNAPSHOT_MIRROR": "http://127.0.0.1:3/snap"}) == \
        "seen_http___127_0_0_1_2_second__http___127_0_0_1_3_snap"
    # Unset again: the snapshot service is gone for this command, not remembered from the last.
    assert seen(bazel, {"DEBIAN_MIRROR": "http://127.0.0.1:1/first"}) == first


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
