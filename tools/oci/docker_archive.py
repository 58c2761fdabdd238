"""Converts an OCI image layout into a docker-archive tar that `docker load` accepts (Docker 20.10 and later).

    docker_archive --layout DIR --tag REPO:TAG [--tag REPO:TAG...] [--platform OS/ARCH[/VARIANT]] --output archive.tar

The archive holds `manifest.json` ([{"Config", "RepoTags", "Layers"}]), the image config as
`<config hex>.json` (unchanged, so the loaded image ID is the OCI config digest) and each layer
as `blobs/sha256/<hex of the stored bytes>`. From an index, --platform picks the image; without
a variant it accepts any variant.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from tools import cli, tarball
from tools.oci.layout import (
    Image,
    Layout,
    LayoutError,
    Platform,
    canonical_json,
    digest_hex,
    sha256_digest,
    uncompressed_tar,
)

# Docker's reference grammar, simplified: [host[:port]/]path/components:tag.
_HOST = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAGGED_REFERENCE = re.compile(rf"^(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*:[\w][\w.-]{{0,127}}$")


def check_tag(tag: str) -> str:
    if not _TAGGED_REFERENCE.match(tag):
        raise LayoutError(f"--tag {tag!r}: expected REPOSITORY:TAG, e.g. example.com/app:latest (lowercase repository)")
    return tag


def select_image(layout: Layout, platform: Platform | None) -> Image:
    images = layout.images()
    matching = [image for image in images if platform is None or platform.accepts(image.platform)]
    if len(matching) == 1:
        return matching[0]
    available = ", ".join(str(image.platform) for image in images) or "none"
    if not matching:
        raise LayoutError(f"{layout.root} has no image for platform {platform} (it has: {available})")
    raise LayoutError(f"{layout.root} holds several images ({available}); choose one with --platform OS/ARCH[/VARIANT]")


def archive_layer(image: Image, desc: dict[str, Any]) -> bytes:
    data = image.layout.read_blob(desc)
    if tarball.compression_of(data) == "zstd":
        # Docker 20.10's `docker load` decompresses gzip layers itself but not zstd (that came in
        # Docker 23), so zstd layers are stored as plain tars; their diff_ids stay the same.
        return uncompressed_tar(data, f"layer {desc['digest']}")
    return data


def docker_archive(image: Image, tags: list[str]) -> tarball.Layer:
    archive = tarball.Layer()
    config_name = f"{digest_hex(image.manifest['config']['digest'])}.json"
    archive.add_file(config_name, image.layout.read_blob(image.manifest["config"]))
    layer_names = []
    for desc in image.manifest.get("layers") or []:
        data = archive_layer(image, desc)
        name = f"blobs/sha256/{digest_hex(sha256_digest(data))}"
        archive.add_file(name, data)
        layer_names.append(name)
    manifest = [{"Config": config_name, "RepoTags": tags, "Layers": layer_names}]
    archive.add_file("manifest.json", canonical_json(manifest))
    return archive


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="docker_archive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--layout", required=True, help="OCI image layout (one image, or an index)")
    parser.add_argument("--tag", required=True, action="append", help="REPOSITORY:TAG that `docker load` gives the image (repeatable)")
    parser.add_argument("--platform", help="OS/ARCH[/VARIANT] to pick from an index, e.g. linux/amd64")
    parser.add_argument("--output", required=True, help="archive to write")
    return parser.parse_args(argv)


@cli.tool("docker_archive", LayoutError)
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tags = [check_tag(tag) for tag in args.tag]
    platform = Platform.parse(args.platform) if args.platform else None
    image = select_image(Layout(Path(args.layout)), platform)
    # Layer.write gives the archive the project's tar conventions: sorted, fixed mtime, root-owned.
    docker_archive(image, tags).write(Path(args.output), compression="none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
