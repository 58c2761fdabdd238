"""Writes an image's SLSA provenance v1 predicate from what the build knows.

The predicate says which target was built and how (`tools/bazel build LABEL`), from which inputs (the
source commit, and the release's lock and manifest with their sha256), by which builder (`tools/bazel`: the
pinned Debian build root, its Bazel version from the root's `bazel-bootstrap` pin, and the digest of the pin
list, which names every tool the build runs). cosign wraps it in an in-toto statement whose subject is the
image's digest when `:push` attests it.

Deterministic: no time is written unless a volatile status file is given (`--stamp` builds), and then only
runDetails.metadata.startedOn, from its BUILD_TIMESTAMP.

    python3 -m tools.oci.provenance --target LABEL --source SOURCE_JSON --build-root-packages FILE
        [--source-url URL] [--volatile-status FILE] --output OUT DEPENDENCY [DEPENDENCY...]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Sequence

from tools import build_root_packages, cli

PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
# What the buildType means is documented in README.md ("What the provenance says").
BUILD_TYPE = "urn:distroless-python:build-type:tools-bazel-build:v1"
BUILDER_ID = "urn:distroless-python:builder:tools/bazel"
# The build root's package that provides Bazel (Debian's bazel binary reports no version itself).
BAZEL_PACKAGE = "bazel-bootstrap"
LABEL = re.compile(r"^//[A-Za-z0-9._/+-]*:[A-Za-z0-9._+-]+$")
COMMIT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


class ProvenanceError(Exception):
    """Input the predicate cannot be made from; the message names it and the fix."""


def sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise ProvenanceError(f"cannot read {path} ({error.strerror}); pass an existing file") from None


def read_source(path: Path) -> tuple[str, str]:
    """(commit, why it is unknown) from @source_commit//:source.json; exactly one of them is non-empty."""
    try:
        source = json.loads(path.read_text())
        commit, unknown = str(source["commit"]), str(source["unknown_because"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ProvenanceError(f"{path} is not a source description ({error}); it comes from "
                              "@source_commit//:source.json") from None
    if commit and not COMMIT.fullmatch(commit):
        raise ProvenanceError(f"{path}: '{commit}' is not a git commit id")
    if bool(commit) == bool(unknown):
        raise ProvenanceError(f"{path} must give either a commit or why it is unknown")
    return commit, unknown


def bazel_version(packages: Path) -> tuple[str, str]:
    """(Bazel's upstream version, the Debian package version) pinned in the build root's package list."""
    try:
        pins = build_root_packages.read_package_list(packages).pins()
    except (OSError, build_root_packages.BuildRootError) as error:
        raise ProvenanceError(f"cannot read the build root's package list {packages}: {error}") from None
    if BAZEL_PACKAGE not in pins:
        raise ProvenanceError(f"{packages} pins no {BAZEL_PACKAGE}; the build root's Bazel must be pinned there")
    debian_version = pins[BAZEL_PACKAGE]
    return debian_version.split(":")[-1].split("+")[0].split("-")[0], debian_version


def started_on(volatile_status: Path) -> str:
    """BUILD_TIMESTAMP (seconds since the epoch) of Bazel's volatile status, as an RFC 3339 UTC time."""
    try:
        lines = volatile_status.read_text().splitlines()
    except OSError as error:
        raise ProvenanceError(f"cannot read {volatile_status} ({error.strerror})") from None
    for line in lines:
        key, _, value = line.partition(" ")
        if key == "BUILD_TIMESTAMP" and value.strip().isdigit():
            moment = datetime.datetime.fromtimestamp(int(value), tz=datetime.timezone.utc)
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    raise ProvenanceError(f"{volatile_status} has no BUILD_TIMESTAMP; it should be Bazel's volatile status")


def predicate(target: str, commit: str, unknown: str, dependencies: Sequence[Path], packages: Path,
              source_url: str = "", started: str = "") -> dict[str, Any]:
    """The SLSA v1 provenance predicate of one image target."""
    if not LABEL.fullmatch(target):
        raise ProvenanceError(f"'{target}' is not an absolute label like //python:3.13_amd64; fix --target")
    if not dependencies:
        raise ProvenanceError("no dependency given: name the release's lock.json and manifest.yaml")
    upstream, debian_version = bazel_version(packages)
    command = ["tools/bazel", "build", *(["--stamp"] if started else []), target]
    source: dict[str, Any] = {"commit": commit} if commit else {"commit": "unknown", "unknownBecause": unknown}
    if source_url:
        source["repository"] = source_url
    resolved: list[dict[str, Any]] = []
    if commit:
        descriptor: dict[str, Any] = {"name": "source", "digest": {"gitCommit": commit}}
        if source_url:
            descriptor["uri"] = f"git+{source_url}@{commit}"
        resolved.append(descriptor)
    resolved += [{"name": path.as_posix(), "digest": {"sha256": sha256(path)}}
                 for path in sorted(set(dependencies), key=lambda path: path.as_posix())]
    run_details: dict[str, Any] = {
        "builder": {
            "id": BUILDER_ID,
            "version": {"bazel": upstream, BAZEL_PACKAGE: debian_version},
            # The pin list names every tool the build root holds, so its digest identifies the builder's tools.
            "builderDependencies": [{"name": packages.as_posix(), "digest": {"sha256": sha256(packages)}}],
        },
    }
    if started:
        run_details["metadata"] = {"startedOn": started}
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {"target": target, "command": " ".join(command), "source": source},
            "resolvedDependencies": resolved,
        },
        "runDetails": run_details,
    }


def problems(document: Any) -> list[str]:
    """What keeps a document from being a SLSA v1 provenance predicate (its required fields); [] if nothing."""
    found: list[str] = []
    if not isinstance(document, dict):
        return ["the predicate is not a JSON object"]
    definition = document.get("buildDefinition")
    details = document.get("runDetails")
    if not isinstance(definition, dict):
        found.append("buildDefinition is missing")
        definition = {}
    if not isinstance(details, dict):
        found.append("runDetails is missing")
        details = {}
    if not isinstance(definition.get("buildType"), str) or not definition.get("buildType"):
        found.append("buildDefinition.buildType is missing")
    if not isinstance(definition.get("externalParameters"), dict) or not definition.get("externalParameters"):
        found.append("buildDefinition.externalParameters is missing or empty")
    builder = details.get("builder")
    if not isinstance(builder, dict) or not isinstance(builder.get("id"), str) or not builder.get("id"):
        found.append("runDetails.builder.id is missing")
    descriptors = [*definition.get("resolvedDependencies", []),
                   *(builder.get("builderDependencies", []) if isinstance(builder, dict) else [])]
    for descriptor in descriptors:
        if not isinstance(descriptor, dict) or not ({"uri", "digest", "content"} & descriptor.keys()):
            found.append(f"resource descriptor {descriptor!r} has none of uri, digest, content")
    return found


@cli.tool("provenance", ProvenanceError)
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="the image's label, e.g. //python:3.13_amd64")
    parser.add_argument("--source", type=Path, required=True, help="@source_commit//:source.json")
    parser.add_argument("--source-url", default="", help="where the source lives (python/config.bzl SOURCE_URL)")
    parser.add_argument("--build-root-packages", type=Path, required=True, help="tools/build_root.packages")
    parser.add_argument("--volatile-status", type=Path, help="Bazel's volatile status (--stamp builds only)")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("dependencies", type=Path, nargs="*", help="the lock files the image is built from")
    args = parser.parse_args(argv)
    commit, unknown = read_source(args.source)
    started = started_on(args.volatile_status) if args.volatile_status else ""
    document = predicate(args.target, commit, unknown, args.dependencies, args.build_root_packages,
                         args.source_url, started)
    wrong = problems(document)
    if wrong:
        raise ProvenanceError("the predicate would not be SLSA v1 provenance: " + "; ".join(wrong))
    args.output.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
