"""A service in a workspace of its own builds its image with this module's rules, and the image runs.

examples/own_repository is that workspace (its own MODULE.bazel, depending on distroless_python; excluded from
this one by .bazelignore). A nested Bazel (its own server and output base) works on a copy of it in the test's
temporary directory, outside this workspace, with --override_module naming this checkout, as README says to
run it from another repository:
1. `bazel test //:greeter_test`: the lock's wheelhouse wheel (docopt, built from its sdist at lock time) and
   the app on //python:3.13_amd64_nonroot, and the structure test runs the image in an engine;
2. an edited requirements.in: the build fails at once, naming the update command.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tools.remote.nested_bazel import NestedBazel, workspace_from_runfiles


def main() -> int:
    workspace = workspace_from_runfiles(dict(os.environ))
    scratch = Path(os.environ["TEST_TMPDIR"])
    copy = scratch / "own_repository"
    shutil.copytree(workspace / "examples/own_repository", copy, symlinks=True, ignore=shutil.ignore_patterns("bazel-*"))
    override = f"--override_module=distroless_python={workspace}"
    with NestedBazel(copy, scratch, "own") as bazel:
        built = bazel.run("test", override, "--test_output=all", "//:greeter_test")
        assert built.returncode == 0, f"the workspace's image did not build or its test failed (exit {built.returncode})"
        assert "HELLO, OWN REPOSITORY" in built.output, "the structure test's output does not show the app's answer"
        assert "//:greeter_test" in built.output and "PASSED" in built.output
        print(f"FIGURES: own workspace, fresh output base: built and tested in {built.seconds:.1f} s")

        with open(copy / "requirements.in", "a", encoding="utf-8") as requirements:
            requirements.write("six\n")
        stale = bazel.run("build", override, "//:greeter_amd64")
        assert stale.returncode != 0, "a build with a stale lock succeeded"
        expected = "requirements.lock is stale: requirements.in changed since it was locked"
        assert expected in stale.output, f"the stale lock's error is missing: {expected!r}"
        assert "update it: tools/bazel run //:requirements.update" in stale.output
    print("own_repository_test: the outside workspace built, ran its image, and refused its stale lock")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
