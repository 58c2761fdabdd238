"""Reading and writing OCI image layout directories.

See https://github.com/opencontainers/image-spec/blob/main/image-layout.md. A layout is `oci-layout`,
`index.json` and content-addressed `blobs/<algorithm>/<hex>`.
Everything this project writes is serialized canonically (`canonical_json`) so that the same
inputs give byte-identical blobs, hence the same digests, on any machine and in any directory.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from tools import tarball
from tools.atomic_file import atomic_writer, write_atomically

OCI_LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
OCI_LAYOUT_VERSION = "1.0.0"

INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPES = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
# Docker's schema 2 types name the same formats; base images pulled from Docker Hub may use them.
DOCKER_INDEX_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LAYER_MEDIA_TYPES = {
    "application/vnd.docker.image.rootfs.diff.tar": LAYER_MEDIA_TYPES["none"],
    "application/vnd.docker.image.rootfs.diff.tar.gzip": LAYER_MEDIA_TYPES["gzip"],
    "application/vnd.docker.image.rootfs.diff.tar.zstd": LAYER_MEDIA_TYPES["zstd"],
}
INDEX_MEDIA_TYPES = (INDEX_MEDIA_TYPE, DOCKER_INDEX_MEDIA_TYPE)
MANIFEST_MEDIA_TYPES = (MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE)

# buildx stores provenance attestations as extra manifests in an index; they are not images to run.
ATTESTATION_ANNOTATION = "vnd.docker.reference.type"

_DIGEST = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
_COPY_CHUNK = 1 << 20


class LayoutError(Exception):
    """Bad input or an inconsistent layout: the tools report it as one line and exit 1."""


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: one byte sequence per value, so digests are reproducible."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_hex(digest: str) -> str:
    return digest.partition(":")[2]


def descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}


def uncompressed_tar(data: bytes, what: str) -> bytes:
    """Decompresses a layer and checks that the result is a tar archive."""
    try:
        tar = tarball.decompress(data)
    except tarball.CompressionError as error:
        raise LayoutError(f"{what}: cannot decompress: {error}") from None
    try:
        # Opening reads the first header, which is enough to reject a file that is no tar at all.
        tarfile.open(fileobj=io.BytesIO(tar), mode="r:").close()
    except tarfile.TarError:
        raise LayoutError(f"{what} is not a tar archive") from None
    return tar


def read_file(path: Path, what: str) -> bytes:
    """Reads a whole input file, turning a missing or unreadable one into a LayoutError."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise LayoutError(f"cannot read {what} {path}: {error.strerror or error}") from None


def prepare_output_dir(path: Path) -> None:
    """Creates `path`, or accepts it if it is an empty directory (Bazel pre-creates declared directories)."""
    if path.exists() and not path.is_dir():
        raise LayoutError(f"output {path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        raise LayoutError(f"output directory {path} is not empty")
    path.mkdir(parents=True, exist_ok=True)


def parse_key_value(text: str, flag: str) -> tuple[str, str]:
    """Splits a `KEY=VALUE` flag value at its first '='; the key must not be empty."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise LayoutError(f"{flag} {text!r}: expected KEY=VALUE")
    return key, value


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parses `os/architecture[/variant]`, as in `docker --platform`."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise LayoutError(f"platform {text!r}: expected OS/ARCHITECTURE[/VARIANT], e.g. linux/amd64")
        return cls(*parts)

    @classmethod
    def of_config(cls, config: dict[str, Any]) -> Platform:
        return cls(config.get("os", ""), config.get("architecture", ""), config.get("variant", ""))

    def accepts(self, other: Platform) -> bool:
        """Whether `other` satisfies this requested platform; no requested variant accepts any variant."""
        return (self.os, self.architecture) == (other.os, other.architecture) and self.variant in ("", other.variant)

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


def descriptor_platform(config: dict[str, Any]) -> dict[str, Any]:
    """The `platform` of an index entry: the image config's platform fields that are set."""
    fields = ("architecture", "os", "variant", "os.version", "os.features")
    return {field: config[field] for field in fields if config.get(field)}


@dataclass
class Image:
    """One image of a layout: its manifest (and the descriptor that points at it) and its config."""

    layout: Layout
    manifest_descriptor: dict[str, Any]
    manifest: dict[str, Any]
    config: dict[str, Any]

    @property
    def platform(self) -> Platform:
        return Platform.of_config(self.config)

    @property
    def diff_ids(self) -> list[str]:
        return (self.config.get("rootfs") or {}).get("diff_ids") or []

    def blob_descriptors(self) -> list[dict[str, Any]]:
        """Every blob the image needs: manifest, config and layers."""
        return [self.manifest_descriptor, self.manifest["config"], *(self.manifest.get("layers") or [])]


class Layout:
    """An OCI image layout directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def blob_path(self, digest: object) -> Path:
        # Checking the digest's form also keeps a crafted digest from naming a path outside blobs/.
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise LayoutError(f"{self.root}: unsupported or malformed digest {digest!r}")
        algorithm, _, hex_digest = digest.partition(":")
        return self.root / "blobs" / algorithm / hex_digest

    def read_blob(self, desc: dict[str, Any]) -> bytes:
        """Reads the blob `desc` points at, checking its size and digest."""
        data = read_file(self.blob_path(desc.get("digest")), "blob")
        if len(data) != desc.get("size") or _digest(desc["digest"], data) != desc["digest"]:
            raise LayoutError(f"{self.root}: blob {desc['digest']} does not match its descriptor (size, digest)")
        return data

    def read_json_blob(self, desc: dict[str, Any]) -> dict[str, Any]:
        return _parse_json(self.read_blob(desc), f"{self.root}: blob {desc['digest']}")

    def read_json_digest(self, digest: str) -> dict[str, Any]:
        """The JSON blob named by `digest`, checked against it: for a digest known without its descriptor."""
        data = read_file(self.blob_path(digest), "blob")
        if _digest(digest, data) != digest:
            raise LayoutError(f"{self.root}: blob {digest} does not match its digest")
        return _parse_json(data, f"{self.root}: blob {digest}")

    def read_index(self) -> dict[str, Any]:
        path = self.root / INDEX_FILE
        if not path.is_file():
            raise LayoutError(f"{self.root} is not an OCI image layout: it has no {INDEX_FILE}")
        return _parse_json(read_file(path, "index"), str(path))

    def images(self) -> list[Image]:
        """All runnable images, following nested indexes; attestation manifests are left out."""
        return list(self._images_in(self.read_index()))

    def single_image(self) -> Image:
        images = self.images()
        if len(images) != 1:
            platforms = ", ".join(str(image.platform) for image in images) or "none"
            raise LayoutError(f"{self.root} holds {len(images)} images ({platforms}); expected exactly one")
        return images[0]

    def _images_in(self, index: dict[str, Any]) -> Iterator[Image]:
        for desc in index.get("manifests", []):
            media_type = desc.get("mediaType")
            if (desc.get("annotations") or {}).get(ATTESTATION_ANNOTATION) == "attestation-manifest":
                continue
            if media_type in INDEX_MEDIA_TYPES:
                yield from self._images_in(self.read_json_blob(desc))
            elif media_type in MANIFEST_MEDIA_TYPES:
                manifest = self.read_json_blob(desc)
                if not isinstance(manifest.get("config"), dict):
                    raise LayoutError(f"{self.root}: manifest {desc.get('digest')} has no config descriptor")
                yield self._checked_image(Image(self, desc, manifest, self.read_json_blob(manifest["config"])))
            else:
                raise LayoutError(f"{self.root}: unsupported media type {media_type!r} in an index")

    def _checked_image(self, image: Image) -> Image:
        layers, diff_ids = len(image.manifest.get("layers") or []), len(image.diff_ids)
        if layers != diff_ids:
            digest = image.manifest_descriptor["digest"]
            raise LayoutError(f"{self.root}: image {digest} has {layers} layers but {diff_ids} diff_ids")
        return image

    def write_blob(self, data: bytes) -> str:
        """Stores `data` under its sha256 digest (once) and returns the digest."""
        digest = sha256_digest(data)
        path = self.blob_path(digest)
        if not path.exists():
            write_atomically(path, data)
        return digest

    def copy_blob(self, source: Layout, desc: dict[str, Any]) -> None:
        """Copies a blob from another layout in chunks (layers can be large), checking its digest."""
        target = self.blob_path(desc.get("digest"))
        if target.exists():
            return
        with atomic_writer(target) as out:
            actual, size = _copy_and_digest(source.blob_path(desc["digest"]), out, desc["digest"])
            if size != desc.get("size") or actual != desc["digest"]:
                raise LayoutError(f"{source.root}: blob {desc['digest']} does not match its descriptor (size, digest)")

    def write_index(self, manifests: list[dict[str, Any]]) -> None:
        """Writes `oci-layout`, then `index.json` last, so a layout with an index is a complete one."""
        oci_layout = {"imageLayoutVersion": OCI_LAYOUT_VERSION}
        write_atomically(self.root / OCI_LAYOUT_FILE, canonical_json(oci_layout))
        index = {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": manifests}
        write_atomically(self.root / INDEX_FILE, canonical_json(index))


def _digest(like: str, data: bytes) -> str:
    """The digest of `data` with the algorithm of the digest `like`."""
    algorithm = like.partition(":")[0]
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def _copy_and_digest(source: Path, out: BinaryIO, like: str) -> tuple[str, int]:
    """Copies `source` to `out`; returns its digest (with the algorithm of `like`) and size."""
    algorithm = like.partition(":")[0]
    hasher = hashlib.new(algorithm)
    size = 0
    try:
        with source.open("rb") as f:
            while chunk := f.read(_COPY_CHUNK):
                hasher.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except OSError as error:
        raise LayoutError(f"cannot read blob {source}: {error.strerror or error}") from None
    return f"{algorithm}:{hasher.hexdigest()}", size


def _parse_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LayoutError(f"{what} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise LayoutError(f"{what} is not a JSON object")
    return value
