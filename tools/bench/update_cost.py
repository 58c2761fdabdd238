"""What a Debian update costs a client that holds the current image: for each source package, the compressed
bytes of the layers that change when only that source changes.

A layer changes with a source when it holds one of the source's packages (its /var/lib/dpkg/status.d/ entry
says so) or is generated from files that source ships (its packages' .md5sums list them): the .pyc layer
from the standard library (usr/lib/pythonX.Y/*.py), the CA bundle from the certificates
(usr/share/ca-certificates/*.crt). The
ld.so.cache changes only when library file names do, which a security update rarely brings, so it is not
counted.
"""

from __future__ import annotations

import io
import posixpath
import re
import statistics
import tarfile
from dataclasses import dataclass
from typing import Sequence

from tools.bench.results import SourceCost, UpdateCost

STATUS_DIR = "var/lib/dpkg/status.d/"
# Generated layer -> what, in the other layers, it is generated from.
DERIVED_FROM = {
    "_pyc.tar.gz": re.compile(r"usr/lib/python\d+\.\d+/.*\.py"),
    "_ca_bundle.tar.gz": re.compile(r"usr/share/ca-certificates/.*\.crt"),
}


@dataclass
class LayerContent:
    name: str  # the layer file's name, from the image config's history
    compressed: int
    sources: set[str]  # the Debian source packages whose packages it holds
    inputs: dict[str, set[str]]  # source -> the DERIVED_FROM suffixes its files there are an input of


def status_fields(text: str) -> dict[str, str]:
    return dict((key, value.strip()) for key, value in (line.split(":", 1) for line in text.splitlines()
                                                         if ":" in line and not line.startswith(" ")))


def status_source(text: str) -> str:
    """The source package a status.d entry names: its Source field's name, else its Package."""
    fields = status_fields(text)
    return fields.get("Source", "").split("(")[0].strip() or fields.get("Package", "")


def layer_content(name: str, compressed: int, tar: bytes) -> LayerContent:
    """Which sources' packages the layer holds (status.d entries), and which of them ship what a generated
    layer is made from (their .md5sums list the package's files)."""
    entries: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        for member in archive:
            path = posixpath.normpath(member.name).lstrip("/")
            if member.isfile() and path.startswith(STATUS_DIR):
                entries[path[len(STATUS_DIR):]] = archive.extractfile(member).read()
    sources: set[str] = set()
    inputs: dict[str, set[str]] = {}
    for package, text in entries.items():
        if package.endswith(".md5sums"):
            continue
        source = status_source(text.decode("utf-8", "replace"))
        sources.add(source)
        md5sums = entries.get(package + ".md5sums", b"").decode("utf-8", "replace").splitlines()
        files = [line.split(None, 1)[1].strip() for line in md5sums if len(line.split(None, 1)) == 2]
        inputs.setdefault(source, set()).update(
            suffix for suffix, pattern in DERIVED_FROM.items() if any(pattern.fullmatch(f) for f in files))
    return LayerContent(name, compressed, sources, inputs)


def update_cost(image: str, layering: str, layers: Sequence[LayerContent]) -> UpdateCost:
    derived = {suffix: [layer for layer in layers if layer.name.endswith(suffix)] for suffix in DERIVED_FROM}
    costs = []
    for source in sorted({source for layer in layers for source in layer.sources}):
        holding = [layer for layer in layers if source in layer.sources]
        changed = {layer.name: layer for layer in holding}
        for suffix, generated in derived.items():
            if any(suffix in layer.inputs.get(source, ()) for layer in holding):
                changed.update((layer.name, layer) for layer in generated)
        ordered = [layer for layer in layers if layer.name in changed]
        costs.append(SourceCost(source, sum(layer.compressed for layer in ordered), [l.name for l in ordered]))
    if not costs:
        raise ValueError(f"{image}: no layer holds a /{STATUS_DIR} entry, so no source package can be costed")
    values = [cost.bytes for cost in costs]
    return UpdateCost(image, layering, len(layers), sum(layer.compressed for layer in layers), costs,
                      statistics.median(values), statistics.fmean(values), max(values))
