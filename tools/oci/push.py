"""Pushes OCI layouts to a registry with crane: blobs and manifest by digest first, tags last.

A tag therefore only ever moves to an image whose every blob is already in the registry; an interrupted push
leaves no tag changed and can simply be run again (crane skips the blobs the registry already has).
Credentials come from the user's docker config, as crane reads them; nothing here stores any.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# The reference grammar of the distribution spec, simplified to what a repository and a tag may be.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
REPOSITORY = re.compile(rf"^(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class PushError(Exception):
    """A push that cannot go on; the message names the target and what to do."""


@dataclass(frozen=True)
class Target:
    layout: Path
    repository: str
    tags: tuple[str, ...]


def check_target(target: Target) -> None:
    if not REPOSITORY.fullmatch(target.repository):
        raise PushError(f"'{target.repository}' is not a valid repository (lowercase path components, optionally "
                        "after a registry host[:port], e.g. 127.0.0.1:5000/distroless/python); fix --repository")
    for tag in target.tags:
        if not TAG.fullmatch(tag):
            raise PushError(f"'{tag}' is not a valid tag for {target.repository} (letters, digits, '_', '.', '-', "
                            "at most 128, not starting with '.' or '-'); fix --tag")


def layout_digest(layout: Path) -> str:
    """The digest of the one manifest or index a layout holds."""
    try:
        manifests = json.loads((layout / "index.json").read_text())["manifests"]
    except (OSError, ValueError, KeyError) as error:
        raise PushError(f"{layout} is not an OCI image layout ({error}); build the image first") from None
    if len(manifests) != 1:
        raise PushError(f"{layout} holds {len(manifests)} manifests; push one image or one index at a time")
    return manifests[0]["digest"]


def crane(arguments: list[str], target: Target) -> str:
    result = subprocess.run(["crane", *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise PushError(f"pushing {target.layout.name} to {target.repository} failed: {last}. {advice(last)}; "
                        "no tag was moved.")
    return result.stdout


def advice(message: str) -> str:
    """What to do about a failed crane call, judged from its last message."""
    if re.search(r"\b(401|403)\b|UNAUTHORIZED|DENIED", message):
        return ("The registry refused the credentials (or got none): log in with `docker login REGISTRY` or "
                "`crane auth login REGISTRY`, which write your docker config")
    return ("Check that the registry is reachable and that your docker config holds credentials for it "
            "(docker login / crane auth login)")


def push(target: Target) -> str:
    """Pushes one layout by digest, then points each tag at it; returns the digest."""
    check_target(target)
    digest = layout_digest(target.layout)
    by_digest = f"{target.repository}@{digest}"
    # crane pushes a layout's single descriptor as it is, image or index. (Its --index flag would instead
    # wrap the layout's descriptors in a new index, whose digest is not the one built here.)
    crane(["push", str(target.layout), by_digest], target)
    for tag in target.tags:
        crane(["tag", by_digest, tag], target)
    print(f"pushed {by_digest}" + (f" as {', '.join(target.tags)}" if target.tags else ""))
    return digest


def parse_image(spec: str) -> tuple[Path, str, tuple[str, ...]]:
    """LAYOUT=NAME:TAG[,TAG...] -> (layout, name, tags)."""
    layout, _, rest = spec.partition("=")
    name, _, tags = rest.partition(":")
    if not layout or not name or not tags:
        raise argparse.ArgumentTypeError(f"'{spec}' is not LAYOUT=NAME:TAG[,TAG...]")
    return Path(layout), name, tuple(tags.split(","))


def targets(args: argparse.Namespace) -> list[Target]:
    """What to push: one rule's image, or (for the project's :push) every image under a repository prefix."""
    if args.image:
        if args.tag:
            raise PushError("-t/--tag only applies to a single image's push; :push sets every image's tags itself")
        prefix = (args.repository or os.environ.get("DISTROLESS_REPOSITORY", "")).rstrip("/")
        if not prefix:
            raise PushError("no repository: pass --repository REGISTRY/PREFIX (e.g. 127.0.0.1:5000/distroless) or "
                            "set DISTROLESS_REPOSITORY; images are pushed as PREFIX/python:TAG")
        return [Target(layout, f"{prefix}/{name}", tags) for layout, name, tags in args.image]
    repository = args.repository or args.default_repository
    if not repository:
        raise PushError("no repository: pass --repository REGISTRY/NAME (the rule sets none)")
    return [Target(args.layout, repository, tuple(args.tag or args.default_tag))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", type=Path, help="OCI layout of the image or index to push")
    parser.add_argument("--default-repository", default="", help="repository from the rule, used without -r")
    parser.add_argument("--default-tag", action="append", default=[], help="tags from the rule, used without -t")
    parser.add_argument("--image", type=parse_image, action="append", default=[],
                        help="LAYOUT=NAME:TAG[,TAG...]: push to REPOSITORY/NAME (repeatable; REPOSITORY is a prefix)")
    parser.add_argument("-r", "--repository", help="repository to push to (with --image: the prefix)")
    parser.add_argument("-t", "--tag", action="append", help="tag to set (repeatable); replaces the rule's tags")
    args = parser.parse_args(argv)
    if bool(args.layout) == bool(args.image):
        parser.error("give either --layout or --image")
    try:
        for target in targets(args):
            push(target)
    except PushError as error:
        print(f"push: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
