"""Reading the images Bazel built, through the project's OCI layout reader (tools/oci/layout.py): their
layers by name, sizes compressed and not, and what pruning the standard library took out of a layer."""

from __future__ import annotations

import contextlib
import io
import posixpath
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from tools import tarball
from tools.architectures import ARCHITECTURES
from tools.bench.console import BenchError
from tools.bench.results import PER_GROUP, PER_SOURCE, ImageSize, LayerSize, Pruning, UpdateCost, VariantLayers
from tools.bench.update_cost import LayerContent, layer_content, update_cost
from tools.oci.layout import Image, Layout, LayoutError, uncompressed_tar

# Per-architecture images of the default variant, e.g. bazel-bin/python/3.13_arm64.
ARCH_IMAGE = re.compile(rf"^(\d+\.\d+)_({'|'.join(map(re.escape, ARCHITECTURES))})$")
PYC_LAYER_SUFFIX = "_pyc.tar.gz"


@dataclass
class Layer:
    name: str  # the layer file's name, from the config's history: 3.9_amd64_pyc.tar.gz
    blob: Path
    descriptor: dict[str, Any]  # from the manifest: digest, size (compressed, as pushed)


@dataclass
class BuiltImage:
    image: Image
    layers: list[Layer]

    @property
    def manifest_digest(self) -> str:
        return str(self.image.manifest_descriptor["digest"])

    @property
    def config(self) -> dict[str, Any]:
        return self.image.config


@contextlib.contextmanager
def layout_errors() -> Iterator[None]:
    """The layout reader's errors, as the bench's."""
    try:
        yield
    except LayoutError as error:
        raise BenchError(str(error)) from None


def layer_names(config: dict[str, Any]) -> list[str]:
    """Each layer's file name, from the config's history (one non-empty entry per layer, in order)."""
    return [posixpath.basename(entry.get("created_by", "")) for entry in config.get("history", [])
            if not entry.get("empty_layer")]


def pyc_layer_index(names: Sequence[str]) -> int:
    found = [index for index, name in enumerate(names) if name.endswith(PYC_LAYER_SUFFIX)]
    if len(found) != 1:
        raise BenchError(f"expected exactly one layer named *{PYC_LAYER_SUFFIX} in the image's history, found "
                         f"{len(found)} among {', '.join(names) or 'none'}")
    return found[0]


def read_image(directory: Path) -> BuiltImage:
    """The single image of the OCI layout in `directory`, its layers named by the config's history."""
    with layout_errors():
        layout = Layout(directory)
        image = layout.single_image()
        descriptors = image.manifest.get("layers") or []
        names = layer_names(image.config)
        if len(names) != len(descriptors):
            raise BenchError(f"{directory}: {len(names)} history entries for {len(descriptors)} layers")
        return BuiltImage(image, [Layer(name, layout.blob_path(d.get("digest")), d)
                                  for name, d in zip(names, descriptors)])


def manifest_digest(directory: Path) -> str:
    with layout_errors():
        return str(Layout(directory).single_image().manifest_descriptor["digest"])


def layer_sizes(image: BuiltImage) -> list[LayerSize]:
    sizes = []
    with layout_errors():
        for layer in image.layers:
            data = image.image.layout.read_blob(layer.descriptor)
            uncompressed = uncompressed_tar(data, f"layer {layer.name}")
            sizes.append(LayerSize(layer.name, layer.descriptor["digest"], len(data), len(uncompressed)))
    return sizes


def layer_contents(image: BuiltImage) -> list[LayerContent]:
    with layout_errors():
        return [layer_content(layer.name, int(layer.descriptor["size"]),
                              uncompressed_tar(image.image.layout.read_blob(layer.descriptor), f"layer {layer.name}"))
                for layer in image.layers]


# The baseline's layers, from //python:<image>_grouped_layers: the default variant's package groups.
GROUPED_LAYERS = ("system", "python")


def update_costs(python_bin: Path, image: str) -> list[UpdateCost]:
    """The image's update costs, and the baseline's: its generated layers with the packages in one layer per
    group (<image>_grouped_<group>.tar.gz in bazel-bin/python) instead of one per source."""
    ours = layer_contents(read_image(python_bin / image))
    grouped = []
    for group in GROUPED_LAYERS:
        path = python_bin / f"{image}_grouped_{group}.tar.gz"
        if not path.is_file():
            raise BenchError(f"{path} is missing; build //python:{image}_grouped_layers first")
        data = path.read_bytes()
        grouped.append(layer_content(path.name, len(data), tarball.decompress(data)))
    generated = [layer for layer in ours if not layer.sources]
    return [update_cost(image, PER_SOURCE, ours), update_cost(image, PER_GROUP, generated + grouped)]


def variant_layers(python_bin: Path, image: str) -> VariantLayers:
    """Whether every layer name the variants of `image` (bazel-bin/python/<image>[_variant]) share has one digest."""
    variants = sorted(path.name for path in python_bin.iterdir()
                      if (path.name == image or path.name.startswith(image + "_")) and (path / "index.json").is_file())
    digests: dict[str, set[str]] = {}
    seen: dict[str, int] = {}
    most = 0
    for variant in variants:
        layers = read_image(python_bin / variant).layers
        most = max(most, len(layers))
        for layer in layers:
            digests.setdefault(layer.name, set()).add(str(layer.descriptor["digest"]))
            seen[layer.name] = seen.get(layer.name, 0) + 1
    shared = [name for name, count in seen.items() if count > 1]
    return VariantLayers(image, variants, len(shared), most, sorted(name for name in shared if len(digests[name]) > 1))


def python_version(config: dict[str, Any]) -> str:
    return str(config.get("config", {}).get("Labels", {}).get("python.version", "?"))


def image_size(directory: Path, target: str) -> ImageSize:
    image = read_image(directory)
    sizes = layer_sizes(image)
    return ImageSize(target, python_version(image.config), image.config["architecture"],
                     sum(layer.compressed for layer in sizes), sum(layer.uncompressed for layer in sizes))


def image_sizes(python_dir: Path) -> list[ImageSize]:
    """Every per-architecture image of the default variant under bazel-bin/python, by version then arch."""
    found = [(match, path) for path in python_dir.iterdir() if (match := ARCH_IMAGE.match(path.name)) and path.is_dir()]
    found.sort(key=lambda item: ([int(part) for part in item[0].group(1).split(".")], item[0].group(2)))
    return [image_size(path, "//python:" + path.name) for _, path in found]


def topmost(paths: set[str]) -> list[str]:
    """The paths whose parent directory is not itself in the set."""
    return sorted(p for p in paths if posixpath.dirname(p) not in paths)


def member_names(tar: bytes) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        return {posixpath.normpath(name).lstrip("/") for name in archive.getnames()} - {"."}


def pruning(python_bin: Path, image: str) -> Pruning:
    """What pruning took out of the layer of the source that ships the standard library: bazel-bin/python's
    <image>_src_<source>_debs.tar.gz (the packages as unpacked) against <image>_src_<source>.tar.gz (pruned)."""
    unpruned = sorted(python_bin.glob(f"{image}_src_*_debs.tar.gz"))
    if len(unpruned) != 1:
        raise BenchError(f"expected one {image}_src_*_debs.tar.gz in {python_bin} (the stdlib's layer before "
                         f"pruning), found {len(unpruned)}; the layer targets of //python:{image} have been renamed?")
    before_path = unpruned[0]
    after_path = before_path.with_name(before_path.name.replace("_debs.tar.gz", ".tar.gz"))
    for path in (before_path, after_path):
        if not path.is_file():
            raise BenchError(f"{path} is missing; the layer targets of //python:{image} have been renamed?")
    before, after = before_path.read_bytes(), after_path.read_bytes()
    before_tar, after_tar = tarball.decompress(before), tarball.decompress(after)
    removed = member_names(before_tar) - member_names(after_tar)
    return Pruning(len(before), len(after), len(before_tar), len(after_tar), topmost(removed),
                   after_path.name.removesuffix(".tar.gz"))
