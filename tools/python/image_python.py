"""The target image's own Python, run in a chroot of the image's unpacked layers (under qemu for another architecture).

What the app tools need from it: the facts that decide which wheels fit (implementation, version, machine,
glibc, extension suffix, site directories), reported by the image's interpreter itself; and byte-compiling a
directory with it, exactly as tools/image/compile_pyc.py compiles the stdlib (unchecked-hash pycs,
PYTHONHASHSEED=0, one process in sorted order), so the pycs are deterministic and match the interpreter.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tools.image.chroot import find_program, require_root, run_in_root, select_emulator
from tools.image.compile_pyc import pyc_layer, run_driver, snapshot_pycs
from tools.image.unpack import apply_layer, resolve_in_root, unpack_layers
from tools.oci.layout import Layout
from tools.python.wheel_tags import Interpreter, parse_glibc
from tools.tarball import Layer, normalize_path

# Runs inside the image (any Python 3.9 and later); site is enabled, so site.getsitepackages() is the
# interpreter's real search list, Debian's dist-packages directories included.
FACTS = r"""
import json, os, platform, site, sys, sysconfig
try:
    libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
except (ValueError, OSError):
    libc = ""
print(json.dumps({
    "implementation": sys.implementation.name,
    "version": list(sys.version_info[:3]),
    "cache_tag": sys.implementation.cache_tag,
    "machine": platform.machine(),
    "libc": libc,
    "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX") or "",
    "site_packages": site.getsitepackages(),
}))
"""


class ImagePythonError(Exception):
    pass


@dataclass(frozen=True)
class Facts:
    implementation: str
    version: tuple[int, int, int]
    cache_tag: str
    machine: str
    libc: str
    free_threaded: bool
    ext_suffix: str
    site_packages: tuple[str, ...]

    @classmethod
    def from_json(cls, text: str) -> Facts:
        data = json.loads(text)
        return cls(
            data["implementation"], tuple(data["version"]), data["cache_tag"], data["machine"], data["libc"],
            bool(data["free_threaded"]), data["ext_suffix"], tuple(data["site_packages"]),
        )

    def interpreter(self) -> Interpreter:
        return Interpreter(
            self.implementation, self.version[0], self.version[1], self.machine, parse_glibc(self.libc),
            self.free_threaded,
        )

    def describe(self) -> str:
        return f"{self.implementation} {'.'.join(map(str, self.version))} ({self.cache_tag}) on linux {self.machine}, {self.libc}"


def image_layers(layout_dir: Path) -> tuple[list[Path], str]:
    """The layer blobs of the single image in an OCI layout, bottom first, and its architecture."""
    image = Layout(layout_dir).single_image()
    layers = [image.layout.blob_path(desc.get("digest")) for desc in image.manifest.get("layers") or []]
    return layers, image.platform.architecture


@dataclass
class ImageRoot:
    root: Path
    python: str  # inside the image, absolute
    emulator: Path | None

    def facts(self) -> Facts:
        result = run_in_root(self.root, [self.python, "-B", "-c", FACTS], emulator=self.emulator)
        try:
            return Facts.from_json(result.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError, KeyError) as error:
            raise ImagePythonError(f"unexpected output from the image's {self.python}:\n{result.stdout}{result.stderr}") from error

    def apply(self, layer: Path) -> None:
        apply_layer(layer, self.root)

    def compile(self, directory: str) -> Layer:
        """Byte-compiles `directory` (inside the image) with the image's python; the layer of its new .pyc files."""
        directory = normalize_path(directory)
        host_directory = resolve_in_root(self.root, directory)
        if not host_directory.is_dir():
            return Layer()
        before = snapshot_pycs(host_directory)
        run_driver(self.root, self.python, "/" + directory, self.emulator)
        return pyc_layer(self.root, directory, before)


@contextlib.contextmanager
def unpacked_image(base: Path, python: str, extra_layers: list[Path] | None = None,
                   emulator: Path | None = None) -> Iterator[ImageRoot]:
    """The base image (an OCI layout of one image) and `extra_layers`, unpacked into a temporary root."""
    require_root("the Python app rules")
    layers, architecture = image_layers(base)
    chosen_emulator = select_emulator(architecture or None, emulator)
    with tempfile.TemporaryDirectory(prefix="image_python.") as tmp:
        root = Path(tmp) / "root"
        unpack_layers([*layers, *(extra_layers or [])], root)
        interpreter = find_program(root, (python,))
        if interpreter is None:
            raise ImagePythonError(f"no {python} in the base image {base}: pass the image's interpreter (python attribute)")
        yield ImageRoot(root, interpreter, chosen_emulator)
