"""Builds OCI image layouts: one image from layer tars (optionally on a base image), or an index of images.

    build_layout image --output DIR [--base LAYOUT] [--layer TAR]... [--entrypoint JSON] [--cmd JSON]
                     [--env K=V]... [--user U] [--workdir W] [--label K=V]... [--annotation K=V]...
                     [--os OS] [--architecture ARCH] [--variant V] [--created RFC3339]
    build_layout index --output DIR --image LAYOUT...

Semantics follow rules_oci's oci_image / oci_image_index:
- Layers keep their bytes; the media type follows their compression (gzip, zstd or none) and
  the config's diff_ids are the sha256 of the uncompressed tars.
- With --base, the image starts from the base's config and layers. --env entries replace base
  entries with the same key (in place) and may refer to earlier values as $KEY or ${KEY}; labels
  are merged; entrypoint, cmd, user and workdir replace the base's only when given, and giving an
  entrypoint without a cmd drops the base's cmd (as Docker's ENTRYPOINT does).
- os/architecture/variant default to the base's (linux/amd64 without a base); asking for a
  different platform than the base's is an error rather than a silently mislabelled image.
- `index` writes index.json -> one nested image index blob -> the images' manifests, each entry
  carrying the platform read from the image's config, as rules_oci's oci_image_index does.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tools import cli, tarball
from tools.oci.layout import (
    CONFIG_MEDIA_TYPE,
    DOCKER_LAYER_MEDIA_TYPES,
    INDEX_MEDIA_TYPE,
    LAYER_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPE,
    Image,
    Layout,
    LayoutError,
    canonical_json,
    descriptor,
    descriptor_platform,
    parse_key_value,
    prepare_output_dir,
    read_file,
    sha256_digest,
    uncompressed_tar,
)

EPOCH = "1970-01-01T00:00:00Z"
DEFAULT_PLATFORM = {"os": "linux", "architecture": "amd64"}
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_ENV_REFERENCE = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


@dataclass
class NewLayer:
    """A layer tar given on the command line, with what the manifest and config say about it."""

    data: bytes
    media_type: str
    diff_id: str
    # The file's basename: stable across output trees and machines, unlike its path.
    description: str

    @property
    def descriptor(self) -> dict[str, Any]:
        return descriptor(self.media_type, self.data)


def read_new_layer(path: Path) -> NewLayer:
    data = read_file(path, "layer")
    tar = uncompressed_tar(data, f"layer {path}")
    return NewLayer(data, LAYER_MEDIA_TYPES[tarball.compression_of(data)], sha256_digest(tar), path.name)


def parse_string_list(text: str, flag: str) -> list[str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise LayoutError(f"{flag} {text!r}: expected a JSON list of strings, e.g. [\"/app/run\", \"--flag\"]")
    return value


def check_created(text: str) -> None:
    if _RFC3339.match(text):
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00"))  # rejects out-of-range fields
            return
        except ValueError:
            pass
    raise LayoutError(f"--created {text!r}: expected an RFC 3339 time such as {EPOCH}")


def base_layer_descriptor(desc: dict[str, Any]) -> dict[str, Any]:
    """A base layer's descriptor with an OCI media type (Docker's schema 2 types name the same formats)."""
    declared = str(desc.get("mediaType"))
    media_type = DOCKER_LAYER_MEDIA_TYPES.get(declared, declared)
    if media_type not in LAYER_MEDIA_TYPES.values():
        raise LayoutError(f"base layer {desc.get('digest')}: unsupported media type {declared}")
    return {"mediaType": media_type, "digest": desc["digest"], "size": desc["size"]}


def resolve_platform(base_config: dict[str, Any], requested: dict[str, str | None]) -> dict[str, str]:
    """Each platform field: the requested value, else the base's, else the default; a conflict is an error."""
    resolved = {}
    for field, wanted in requested.items():
        inherited = base_config.get(field)
        if wanted and inherited and wanted != inherited:
            raise LayoutError(f"--{field} {wanted} conflicts with the base image's {field} {inherited}")
        value = wanted or inherited or DEFAULT_PLATFORM.get(field)
        if value:
            resolved[field] = value
    return resolved


def expand_env_references(value: str, env: dict[str, str]) -> str:
    """Replaces $KEY and ${KEY} by the value so far (empty if unset), as rules_oci does for base env."""
    return _ENV_REFERENCE.sub(lambda match: env.get(match.group(1) or match.group(2), ""), value)


def merged_env(base_env: list[str], assignments: list[tuple[str, str]]) -> list[str]:
    """Base entries keep their order; a reassigned key keeps its place, new keys are appended."""
    env = dict(entry.partition("=")[::2] for entry in base_env)
    for key, value in assignments:
        env[key] = expand_env_references(value, env)
    return [f"{key}={value}" for key, value in env.items()]


def runtime_config(base: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The config's `config` object: the base's with the flags applied."""
    runtime = dict(base)
    if args.entrypoint is not None:
        runtime["Entrypoint"] = parse_string_list(args.entrypoint, "--entrypoint")
        if args.cmd is None:
            runtime.pop("Cmd", None)  # the base's arguments were meant for the base's entrypoint
    if args.cmd is not None:
        runtime["Cmd"] = parse_string_list(args.cmd, "--cmd")
    env = [parse_key_value(item, "--env") for item in args.env]
    if env:
        runtime["Env"] = merged_env(runtime.get("Env") or [], env)
    labels = dict(parse_key_value(item, "--label") for item in args.label)
    if labels:
        runtime["Labels"] = {**(runtime.get("Labels") or {}), **labels}
    if args.user is not None:
        runtime["User"] = args.user
    if args.workdir is not None:
        runtime["WorkingDir"] = args.workdir
    return runtime


def image_config(base: Image | None, layers: list[NewLayer], args: argparse.Namespace) -> dict[str, Any]:
    config = copy.deepcopy(base.config) if base else {}
    requested = {"os": args.os, "architecture": args.architecture, "variant": args.variant}
    config.update(resolve_platform(config, requested))
    config["created"] = args.created
    config["config"] = runtime_config(config.get("config") or {}, args)
    base_diff_ids = base.diff_ids if base else []
    config["rootfs"] = {"type": "layers", "diff_ids": [*base_diff_ids, *(layer.diff_id for layer in layers)]}
    history = [{"created": args.created, "created_by": layer.description} for layer in layers]
    config["history"] = [*(config.get("history") or []), *history]
    return config


def build_image(args: argparse.Namespace) -> None:
    check_created(args.created)
    annotations = dict(parse_key_value(item, "--annotation") for item in args.annotation)
    base = Layout(Path(args.base)).single_image() if args.base else None
    base_layers = [(base.layout, desc) for desc in base.manifest.get("layers") or []] if base else []
    layers = [read_new_layer(Path(path)) for path in args.layer]
    # Everything is read and checked before the output is touched.
    layer_descriptors = [base_layer_descriptor(desc) for _, desc in base_layers]
    layer_descriptors += [layer.descriptor for layer in layers]
    config = image_config(base, layers, args)
    output = Layout(Path(args.output))
    prepare_output_dir(output.root)

    for source, desc in base_layers:
        output.copy_blob(source, desc)
    for layer in layers:
        output.write_blob(layer.data)

    config_bytes = canonical_json(config)
    output.write_blob(config_bytes)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": descriptor(CONFIG_MEDIA_TYPE, config_bytes),
        "layers": layer_descriptors,
    }
    if annotations:
        manifest["annotations"] = annotations
    manifest_bytes = canonical_json(manifest)
    output.write_blob(manifest_bytes)
    output.write_index([descriptor(MANIFEST_MEDIA_TYPE, manifest_bytes)])


def index_entry(image: Image) -> dict[str, Any]:
    desc = image.manifest_descriptor
    return {
        "mediaType": desc["mediaType"],
        "digest": desc["digest"],
        "size": desc["size"],
        "platform": descriptor_platform(image.config),
    }


def build_index(args: argparse.Namespace) -> None:
    images = [Layout(Path(path)).single_image() for path in args.image]
    platforms = [str(image.platform) for image in images]
    duplicates = sorted({platform for platform in platforms if platforms.count(platform) > 1})
    if duplicates:
        raise LayoutError(f"several images for platform {', '.join(duplicates)}; an index needs one per platform")
    output = Layout(Path(args.output))
    prepare_output_dir(output.root)

    for image in images:
        for desc in image.blob_descriptors():
            output.copy_blob(image.layout, desc)
    manifests = [index_entry(image) for image in images]
    nested_index = {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": manifests}
    nested_index_bytes = canonical_json(nested_index)
    output.write_blob(nested_index_bytes)
    output.write_index([descriptor(INDEX_MEDIA_TYPE, nested_index_bytes)])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="build_layout", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    image = commands.add_parser("image", help="write a single-image OCI layout")
    image.set_defaults(run=build_image)
    image.add_argument("--output", required=True, help="layout directory to create (absent or empty)")
    image.add_argument("--base", help="OCI layout holding the one base image")
    image.add_argument("--layer", action="append", default=[], help="layer tar (gzip, zstd or uncompressed), in order")
    image.add_argument("--entrypoint", help='JSON list of strings, e.g. ["/usr/bin/python3"]')
    image.add_argument("--cmd", help="JSON list of strings")
    image.add_argument("--env", action="append", default=[], help="KEY=VALUE; $KEY and ${KEY} expand earlier values")
    image.add_argument("--user")
    image.add_argument("--workdir")
    image.add_argument("--label", action="append", default=[], help="KEY=VALUE config label")
    image.add_argument("--annotation", action="append", default=[], help="KEY=VALUE manifest annotation")
    image.add_argument("--os", help="default: the base's, else linux")
    image.add_argument("--architecture", help="default: the base's, else amd64")
    image.add_argument("--variant", help="e.g. v8 for arm64; default: the base's")
    image.add_argument("--created", default=EPOCH, help=f"RFC 3339 creation time (default {EPOCH})")

    index = commands.add_parser("index", help="write an OCI layout holding an image index")
    index.set_defaults(run=build_index)
    index.add_argument("--output", required=True, help="layout directory to create (absent or empty)")
    index.add_argument(
        "--image", action="extend", nargs="+", required=True, help="single-image OCI layouts, one per platform"
    )
    return parser.parse_args(argv)


@cli.tool("build_layout", LayoutError)
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
