"""A service in a workspace of its own locks, builds and runs its image with this module's rules, as README says.

examples/own_repository is that workspace (its own MODULE.bazel, depending on distroless_python through
`third_party/distroless-python`, which stands for a git submodule; excluded from this workspace by
.bazelignore). Its MODULE.bazel, and its BUILD.bazel up to its own test, must be README's snippets as written.
A nested Bazel (its own server and output base) works on a copy of it in the test's temporary directory,
outside this workspace, whose third_party/distroless-python is this checkout:
1. `bazel run //:requirements.update` from no lock at all: pip resolves docopt, which publishes only an sdist,
   and the lock builds it into wheelhouse/;
2. `bazel test //:greeter_test`: the wheel and the app on //python:3.13_amd64_nonroot, run in an engine;
3. `bazel run //:greeter_run -- ARGS`: the image runs with the arguments;
4. an edited requirements.in: the build fails at once, naming the update command.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from tools.python.requirements_lock_reader import parse_lock
from tools.remote.nested_bazel import NestedBazel, copy_checkout, workspace_from_runfiles

WHEEL = "docopt-0.6.2-py2.py3-none-any.whl"


def readme_block(text: str) -> str:
    """The fixture file as README shows it: its text up to the line that says README's part ends."""
    return text.split("\n# Above: README", 1)[0].rstrip("\n") + "\n"


def check_readme(workspace: Path, fixture: Path) -> None:
    readme = (workspace / "README.md").read_text(encoding="utf-8")
    for name in ("MODULE.bazel", "BUILD.bazel"):
        snippet = readme_block((fixture / name).read_text(encoding="utf-8"))
        assert f"```starlark\n{snippet}```" in readme, f"README's {name} snippet is not examples/own_repository/{name}"


def main() -> int:
    workspace = workspace_from_runfiles(dict(os.environ))
    fixture = workspace / "examples/own_repository"
    check_readme(workspace, fixture)
    scratch = Path(os.environ["TEST_TMPDIR"])
    copy = scratch / "own_repository"
    shutil.copytree(fixture, copy, symlinks=True, ignore=shutil.ignore_patterns("bazel-*", "requirements.lock", "wheelhouse"))
    # A copy, not a link to the checkout: Bazel's sandbox hides /tmp, where a CI checkout may well live.
    (copy / "third_party/distroless-python").unlink()
    copy_checkout(workspace, copy / "third_party/distroless-python")
    with NestedBazel(copy, scratch, "own") as bazel:
        locked = bazel.run("run", "//:requirements.update")
        assert locked.returncode == 0, f"the lock failed (exit {locked.returncode})"
        wheel = copy / "wheelhouse" / WHEEL
        requirement, = parse_lock((copy / "requirements.lock").read_text(encoding="utf-8"))
        assert (requirement.name, requirement.version) == ("docopt", "0.6.2")
        assert requirement.hashes == (hashlib.sha256(wheel.read_bytes()).hexdigest(),), "the lock does not hash the built wheel"

        tested = bazel.run("test", "--test_output=all", "//:greeter_test")
        assert tested.returncode == 0, f"the workspace's image did not build or its test failed (exit {tested.returncode})"
        assert "HELLO, OWN REPOSITORY" in tested.output, "the structure test's output does not show the app's answer"
        print(f"FIGURES: own workspace, fresh output base: image built and tested in {tested.seconds:.1f} s")

        ran = bazel.run("run", "//:greeter_run", "--", "--name=bazel run")
        assert ran.returncode == 0 and "\nhello, bazel run\n" in ran.output, "greeter_run did not print its greeting"

        with open(copy / "requirements.in", "a", encoding="utf-8") as requirements:
            requirements.write("six\n")
        stale = bazel.run("build", "//:greeter_amd64")
        assert stale.returncode != 0, "a build with a stale lock succeeded"
        expected = "requirements.lock is stale: requirements.in changed since it was locked"
        assert expected in stale.output, f"the stale lock's error is missing: {expected!r}"
        assert "update it: tools/bazel run //:requirements.update" in stale.output
    print("own_repository_test: locked from nothing, built, tested and ran its image, refused its stale lock")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
