"""README's recipe for a new Python version, proven: a release's manifest and lock plus one entry in
python/config.bzl give every image target, with no other file edited.

A nested Bazel (its own server and output base) queries a copy of the workspace three times:
  1. one entry for a throwaway version that names an existing release's lock (trixie);
  2. a throwaway release (debian_packages/throwaway/, trixie's manifest and lock copied) and one entry naming it:
     the debian extension must find the new lock with MODULE.bazel untouched;
  3. an entry naming a release that has no lock, which must fail with the message that says what to write.
Nothing is downloaded: `bazel query` loads the image macros and the lock hub, never a .deb.
"""

from __future__ import annotations

import filecmp
import fnmatch
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from tools.remote.nested_bazel import NOT_SOURCE, NestedBazel, copy_checkout, workspace_from_runfiles

CONFIG = "python/config.bzl"
# Every target the image matrix makes for one version, per README's table (one arch, every variant).
EXPECTED_SUFFIXES = ["", "-nonroot", "-debug", "-debug-nonroot", "-dev", "_amd64", "_arm64", "_amd64_debug_nonroot",
                     "_arm64_dev", "_amd64_test", "_arm64_nonroot_test", "_push", "-debug_push", "_load",
                     "_amd64_sbom", ".sbom"]


def is_source(relative: Path) -> bool:
    """Whether a path of the checkout is source: what copy_checkout copies, and what this test compares."""
    return not any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in NOT_SOURCE)


def add_entry(workspace: Path, entry: str) -> None:
    """Adds one line to PYTHONS, before the dict's closing brace: the recipe's one edit."""
    config = workspace / CONFIG
    text = config.read_text()
    match = re.search(r"^PYTHONS = \{\n.*?^\}", text, re.MULTILINE | re.DOTALL)
    if not match:
        pytest.fail(f"{CONFIG} has no `PYTHONS = {{ ... }}` block to add an entry to; update this test with it")
    end = match.end() - 1
    config.write_text(text[:end] + f"    {entry},\n" + text[end:])


def edited_files(original: Path, copy: Path) -> list[str]:
    """Files of the original that differ in the copy (new files in the copy are not edits)."""
    edited = []
    for path in original.rglob("*"):
        relative = path.relative_to(original)
        if not is_source(relative) or not path.is_file() or path.is_symlink():
            continue
        if not filecmp.cmp(path, copy / relative, shallow=False):
            edited.append(relative.as_posix())
    return edited


# What a user runs, stopped after analysis: the failures below all happen while loading.
USER_BUILD = ("build", "--nobuild", "//python:3.13")


def remove_entry(workspace: Path, version: str) -> None:
    """Takes back an entry add_entry made."""
    config = workspace / CONFIG
    lines = [line for line in config.read_text().splitlines(keepends=True) if not line.startswith(f'    "{version}": ')]
    config.write_text("".join(lines))


def assert_one_error(output: str, case: str) -> None:
    """The failure is its one message: no follow-on errors about targets the failed package never defined."""
    errors = [line for line in output.splitlines() if line.startswith("ERROR:")]
    noise = [line for line in errors if "no such target" in line or "no such package" in line]
    assert not noise, f"{case}: the message comes with follow-on noise: {noise}"


def query_targets(bazel: NestedBazel, version: str) -> set[str]:
    result = bazel.run("query", f"attr(name, '^{re.escape(version)}[-_.]|^{re.escape(version)}$', //python:all)",
                       "--output=label")
    assert result.returncode == 0, f"bazel query failed for the entry {version}; its output is above"
    return {line for line in result.output.splitlines() if line.startswith("//python:")}


def assert_image_targets(targets: set[str], version: str) -> None:
    missing = [f"//python:{version}{suffix}" for suffix in EXPECTED_SUFFIXES
               if f"//python:{version}{suffix}" not in targets]
    assert not missing, f"the entry {version} did not give the targets {missing}; it gave {sorted(targets)[:20]}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("recipe") / "workspace"
    copy_checkout(workspace_from_runfiles(dict(os.environ)), copy)
    return copy


def test_release_recipe(workspace: Path) -> None:
    original = workspace_from_runfiles(dict(os.environ))
    scratch = Path(os.environ.get("TEST_TMPDIR", workspace.parent))
    with NestedBazel(workspace, scratch, "recipe") as bazel:
        # 1. One entry naming an existing lock.
        add_entry(workspace, '"9.98": _python("trixie", "3.13")')
        assert_image_targets(query_targets(bazel, "9.98"), "9.98")

        # 2. A new release: its manifest and lock (copies of trixie's), and one entry.
        release = workspace / "debian_packages/throwaway"
        release.mkdir()
        for name in ("manifest.yaml", "lock.json"):
            shutil.copy(original / "debian_packages/trixie" / name, release / name)
        add_entry(workspace, '"9.99": _python("throwaway", "3.13")')
        assert_image_targets(query_targets(bazel, "9.99"), "9.99")
        deb = bazel.run("query", "@debian_releases//throwaway/arm64:libc6")
        assert deb.returncode == 0, "the hub has no alias for the new release's libc6 (arm64); output above"

        edited = edited_files(original, workspace)
        assert edited == [CONFIG], f"the recipe must edit only {CONFIG}; edited: {edited}"

        # 3. An entry naming a release nobody locked fails with what to do.
        add_entry(workspace, '"9.97": _python("nosuchrelease", "3.13")')
        failed = bazel.run(*USER_BUILD)
        assert failed.returncode != 0, "an entry naming a release without a lock must fail"
        assert "9.97 names Debian release 'nosuchrelease', but debian_packages/nosuchrelease/lock.json does not exist" \
            in failed.output, "the failure does not name the missing lock"
        assert "tools/bazel run //debian_packages:update" in failed.output
        assert_one_error(failed.output, "an entry naming a release without a lock")
        remove_entry(workspace, "9.97")

        # 4. A package deleted from a lock: the lock is named as the broken file, with restore or re-lock.
        lock = release / "lock.json"
        doc = json.loads(lock.read_text())
        doc["packages"] = [p for p in doc["packages"] if not (p["name"] == "libc6" and p["arch"] == "arm64")]
        lock.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        broken = bazel.run(*USER_BUILD)
        assert broken.returncode != 0, "a lock missing libc6 (arm64) must fail"
        where = "debian_packages/throwaway/lock.json"
        for text in (f"{where} is not a complete lock: it has no entry for libc6 (arm64, group 'system')",
                     "a dependency of", f"git checkout -- {where}", "tools/bazel run //debian_packages:update"):
            assert text in broken.output, f"the failure for a package deleted from a lock lacks {text!r}"
        assert "add it to the manifest" not in broken.output, "the manifest is not the broken file"
        assert_one_error(broken.output, "a package deleted from a lock")
        shutil.copy(original / "debian_packages/trixie/lock.json", lock)

        # 5. A release without a group the image matrix needs names the entry, the lock and the group.
        doc = json.loads(lock.read_text())
        del doc["groups"]["dev"]
        lock.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        mismatch = bazel.run(*USER_BUILD)
        assert mismatch.returncode != 0, "a lock without the group 'dev' must fail"
        assert f"9.99 builds amd64, arm64, riscv64 images from {where}, but that lock has no package group dev" \
            in mismatch.output, "the failure does not name the entry, the lock and the missing group"
        assert_one_error(mismatch.output, "a lock without a group the images need")
    print(f"checked: {len(EXPECTED_SUFFIXES)} targets for each of 2 new entries, 3 clear failures", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v", "-p", "no:cacheprovider"]))
