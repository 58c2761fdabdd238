"""One release: `tools/bazel run //:release -- --repository R [--key K] [--dry-run | --prepare | --no-update]`.

Updates every pin (//debian_packages:update); if nothing moved, says `up to date` and pushes nothing. Otherwise
rebuilds the indexes; the affected ones are those whose digest the registry does not serve yet under their tag
(the others hold none of the moved packages, so they are bit for bit what was pushed). It runs the affected
images' structure tests, then pushes and signs those indexes only, runs the rebuild check (//:verify) against
R, and adds an entry to RELEASE_NOTES.md. A failing test pushes nothing.

- `--dry-run` checks, prints what moved and which releases it touches, and writes and pushes nothing.
- `--prepare` is the pull-request half (CI): update, rebuild, test the indexes whose digest the update changed,
  write the release-notes entry; no registry is needed and nothing is pushed.
- `--no-update` is the half after that pull request lands: the committed locks as they are, rebuilt, tested,
  and pushed where the registry serves another digest; then the rebuild check.

It runs on the machine (its launcher is a HOST_LAUNCHER), where tools/bazel, the user's registry credentials
and keys are; every step is tools/bazel itself, so each is what a person would run by hand. The locks are
written atomically by the update command and tags move last in each push, so an interruption leaves no lock
half-written and no tag moved to an incomplete image.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from tools import cli
from tools.oci import push
from tools.oci.layout import Layout, LayoutError

NOTES = "RELEASE_NOTES.md"
# Index label -> its tags, as :push gives them (written by the BUILD file from images.bzl's image_tags()).
TAGS_TARGET = "//:image_tags"
NOTES_HEADER = "# Release notes\n\nNewest first; written by `tools/bazel run //:release`.\n"
ARCHIVE_STATE_ANNOTATION = "debian.archive.timestamp"
# The update command's --check statuses (tools/debian/update.py).
UPDATE_OUTDATED = 1


class ReleaseError(Exception):
    """A release that stops; the message says which step failed and what was (not) pushed."""


@dataclass(frozen=True)
class Index:
    label: str  # //python:3.13
    push: str  # //python:3.13_push
    tests: tuple[str, ...]  # //python:3.13_amd64_test, ...


def parse_index(spec: str) -> Index:
    """LABEL=PUSH=TEST[,TEST...] -> Index."""
    parts = spec.split("=")
    if len(parts) != 3 or not all(parts):
        raise argparse.ArgumentTypeError(f"'{spec}' is not LABEL=PUSH_LABEL=TEST_LABEL[,TEST_LABEL...]")
    return Index(parts[0], parts[1], tuple(parts[2].split(",")))


class Bazel:
    """tools/bazel of the workspace, run as a person would; output passes through, stdout is also returned."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace

    def __call__(self, *args: str, capture: bool = False) -> tuple[int, str]:
        command = [str(self.workspace / "tools" / "bazel"), *args]
        print(f"release: $ tools/bazel {' '.join(args)}", file=sys.stderr, flush=True)
        if not capture:
            return subprocess.run(command, cwd=self.workspace).returncode, ""
        process = subprocess.Popen(command, cwd=self.workspace, stdout=subprocess.PIPE, text=True)
        lines = []
        for line in process.stdout or []:
            sys.stdout.write(line)
            lines.append(line)
        return process.wait(), "".join(lines)


def must(bazel: Callable[..., tuple[int, str]], step: str, *args: str, capture: bool = False) -> str:
    status, output = bazel(*args, capture=capture)
    if status != 0:
        raise ReleaseError(f"{step} failed (`tools/bazel {' '.join(args)}` exited {status}; its messages are above)")
    return output


def index_digests(bazel: Callable[..., tuple[int, str]], indexes: Sequence[Index]) -> dict[str, tuple[str, str]]:
    """Index label -> (digest, archive state), built now."""
    labels = [index.label for index in indexes]
    must(bazel, "building the images", "build", *labels)
    root = must(bazel, "finding the execution root", "info", "execution_root", capture=True).strip().splitlines()[-1]
    listing = must(bazel, "finding the images", "cquery", "--output=starlark",
                   "--starlark:expr=str(target.label) + ' ' + target.files.to_list()[0].path", " + ".join(labels),
                   capture=True)
    paths = {label.lstrip("@"): path for label, path in (line.split(" ", 1) for line in listing.splitlines() if " " in line)}
    found = {}
    for label in labels:
        layout = Layout(Path(root) / paths[label])
        images = layout.images()
        state = images[0].manifest.get("annotations", {}).get(ARCHIVE_STATE_ANNOTATION, "?") if images else "?"
        found[label] = (push.layout_digest(layout.root), state)
    return found


def image_tags(bazel: Callable[..., tuple[int, str]]) -> dict[str, list[str]]:
    """Every index's tags as the current locks give them (the patch version and the date follow the locks)."""
    must(bazel, "writing the tag table", "build", TAGS_TARGET)
    root = must(bazel, "finding the execution root", "info", "execution_root", capture=True).strip().splitlines()[-1]
    path = must(bazel, "finding the tag table", "cquery", "--output=files", TAGS_TARGET, capture=True).split()[-1]
    return json.loads((Path(root) / path).read_text())


def notes_entry(day: str, changes: list[dict], before: dict, after: dict, affected: list[Index],
                tags: dict[str, list[str]]) -> str:
    states = sorted({f"{label.split(':')[1].split('-')[0]}: {after[label][1]}" for label in after})
    lines = [f"## {day}", "", "Archive state of the locks, by Python version: " + ", ".join(states) + ".", "",
             "| release | package | architectures | old | new | CVEs |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {c['scope']} | {c['name']} | {', '.join(c['archs'])} | {c['old'] or '(new)'} | "
              f"{c['new'] or '(removed)'} | {' '.join(c['cves']) or '-'} |" for c in changes]
    lines += ["", "| index | digest | tags |", "| --- | --- | --- |"]
    for index in affected:
        was = f" (was `{before[index.label][0]}`)" if index.label in before else ""
        lines.append(f"| `{index.label}` | `{after[index.label][0]}`{was} | {', '.join(tags.get(index.label, [])) or '-'} |")
    return "\n".join(lines) + "\n"


def add_notes(path: Path, entry: str) -> None:
    """Prepends the entry under the header, written atomically."""
    old = path.read_text() if path.exists() else NOTES_HEADER
    body = old[len(NOTES_HEADER):] if old.startswith(NOTES_HEADER) else old
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(NOTES_HEADER + "\n" + entry + ("\n" + body.lstrip("\n") if body.strip() else ""))
    os.replace(partial, path)


def public_key(key: str, directory: Path) -> Path:
    """The public half of the signing key, for the rebuild check."""
    path = directory / "cosign.pub"
    result = subprocess.run(["cosign", "public-key", "--key", key, "--outfile", str(path)], capture_output=True,
                            text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise ReleaseError(f"cannot use the signing key {key}: {result.stderr.strip().splitlines()[-1:]}; check the "
                           "key and COSIGN_PASSWORD; nothing was pushed")
    return path


def release(bazel: Callable[..., tuple[int, str]], workspace: Path, indexes: Sequence[Index], repository: str,
            key: str, mode: str, today: str, changes_file: str = "") -> int:
    """mode: "release" (update and push), "dry-run", "prepare" (no push) or "no-update" (push the locks as they are)."""
    # In the workspace, which the build root sees at the same path (the update command runs there), unlike /tmp.
    with tempfile.TemporaryDirectory(prefix=".release-", dir=workspace) as scratch:
        report = Path(scratch) / "changes.json"
        if mode == "dry-run":
            status, _ = bazel("run", "//debian_packages:update", "--", "--check", "--report", str(report))
            if status not in (0, UPDATE_OUTDATED):
                raise ReleaseError(f"the update check could not run (exit {status}; its messages are above)")
            changes = json.loads(report.read_text())
            if not changes:
                print("up to date")
                return 0
            touched = sorted({change["scope"] for change in changes})
            where = f" to {repository}" if repository else ""
            print(f"release: --dry-run: would write the new locks of {', '.join(touched)}, rebuild every image, test "
                  f"and push{where} ({'signed' if key else 'unsigned'}) those whose digest changes, run //:verify "
                  f"and add an entry to {NOTES}; nothing was written or pushed")
            return 0
        public = public_key(key, Path(scratch)) if key else None
        before: dict[str, tuple[str, str]] = {}
        changes: list[dict] = []
        if mode == "no-update" and changes_file:
            changes = json.loads(Path(changes_file).read_text())
        if mode != "no-update":
            if mode == "prepare":  # what the update changes is judged against the build before it
                before = index_digests(bazel, indexes)
            must(bazel, "updating the pins", "run", "//debian_packages:update", "--", "--report", str(report))
            changes = json.loads(report.read_text())
            if not changes:
                print("up to date")
                return 0
        after = index_digests(bazel, indexes)
        tags = image_tags(bazel)
        if mode == "prepare":
            affected = [index for index in indexes if after[index.label][0] != before[index.label][0]]
            why = "digest changed by the update"
        else:
            served = {index.label: push.remote_digest(f"{repository}/python:{tags[index.label][0]}") for index in indexes}
            before = {label: (digest, "") for label, digest in served.items() if digest}
            affected = [index for index in indexes if served[index.label] != after[index.label][0]]
            why = f"{repository} serves another digest"
        unaffected = [index.label for index in indexes if index not in affected]
        print(f"release: {len(changes)} pins moved; affected ({why}): "
              + (", ".join(index.label for index in affected) or "none")
              + (f"; unaffected (same digest: they hold none of the moved packages): {', '.join(unaffected)}"
                 if unaffected else ""))
        if not affected:
            print("release: no image changed; nothing to push")
            return 0
        tests = [test for index in affected for test in index.tests]
        status, _ = bazel("test", *tests)
        if status != 0:
            raise ReleaseError(f"the affected images' tests failed (`tools/bazel test` exited {status}; the failing "
                               "targets are named above); nothing was pushed. The new locks are written: fix the "
                               "failure, or `git checkout -- debian_packages tools/build_root.packages` to go back")
        entry = notes_entry(today, changes, before, after, affected, tags) if changes else ""
        if mode == "prepare":
            add_notes(workspace / NOTES, entry)
            print(f"release: --prepare: the new locks and {NOTES} are written; nothing was pushed")
            return 0
        for index in affected:
            flags = ["--repository", f"{repository}/python"] + (["--key", key] if key else [])
            must(bazel, f"pushing {index.label}", "run", index.push, "--", *flags)
        verify = ["--repository", repository] + (["--key", str(public)] if public else [])
        must(bazel, "the rebuild check", "run", "//:verify", "--", *verify)
        if entry:
            add_notes(workspace / NOTES, entry)
        print(f"release: pushed {len(affected)} indexes" + (f"; {NOTES} has the entry: commit it with the locks"
                                                            if entry else ""))
        return 0


@cli.tool("release", ReleaseError, push.PushError, LayoutError)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=parse_index, action="append", default=[], required=True,
                        help="LABEL=PUSH_LABEL=TEST_LABEL[,...]: an index, its push target and its tests (repeatable)")
    parser.add_argument("-r", "--repository", default=os.environ.get("DISTROLESS_REPOSITORY", ""),
                        help="the registry and prefix to push to, as for //:push (default: DISTROLESS_REPOSITORY)")
    parser.add_argument("--key", default=os.environ.get("COSIGN_KEY", ""), help="cosign key to sign with")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--dry-run", action="store_const", dest="mode", const="dry-run",
                       help="write and push nothing; print what would be done")
    modes.add_argument("--prepare", action="store_const", dest="mode", const="prepare",
                       help="update, rebuild, test, write the release notes; push nothing (a pull request's half)")
    modes.add_argument("--no-update", action="store_const", dest="mode", const="no-update",
                       help="push the committed locks' images where the registry differs (after that request lands)")
    parser.add_argument("--changes", default="", help="with --no-update: the update's --report file, for the "
                        "release-notes entry (after a manifest edit, which must be re-locked before anything builds)")
    args = parser.parse_args(argv)
    args.mode = args.mode or "release"
    if args.changes and args.mode != "no-update":
        parser.error("--changes goes with --no-update")
    if not args.repository and args.mode in ("release", "no-update"):
        raise ReleaseError("no repository: pass --repository REGISTRY/PREFIX (as for //:push) or set "
                           "DISTROLESS_REPOSITORY")
    workspace = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", "."))
    key = str(push.key_file(args.key, "signing key", "pass --key (or COSIGN_KEY); nothing was pushed")) if args.key else ""
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    changes = str(push.user_path(args.changes)) if args.changes else ""
    return release(Bazel(workspace), workspace, args.index, args.repository.rstrip("/"), key, args.mode, today, changes)


if __name__ == "__main__":
    raise SystemExit(main())
