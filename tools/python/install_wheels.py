"""Installs wheels into a layer for one image, checked against and byte-compiled by the image's own Python.

The image (an OCI layout of one image) is unpacked and its interpreter, chrooted into it (under qemu for
another architecture), reports what decides whether a wheel fits: implementation, version, machine, glibc,
extension suffix and site directories. Then, per project, the best fitting wheel is installed the way the
binary distribution format (PEP 427, PEP 376, PEP 491) says, with nothing but the standard library:

- every file is checked against the wheel's RECORD (sha256 and size); files outside RECORD are refused;
- root files and `.data/purelib` and `.data/platlib` go to the site directory (default
  /usr/lib/python3/dist-packages, the directory Debian's own python3-* packages use and the image's
  interpreter searches), `.data/scripts` to /usr/bin (a `#!python` line becomes the image's interpreter),
  `.data/headers` to /usr/include/pythonX.Y/NAME, `.data/data` to /usr;
- console and GUI entry points become scripts in /usr/bin;
- INSTALLER and a new RECORD (every installed file, pycs included) are written into the .dist-info;
- native code must fit: every ELF file's machine must be the image's, and an extension module named for a
  CPython ABI (`*.cpython-*.so`) must carry the image's own extension suffix.

Then the image's python byte-compiles the site directory (unchecked-hash pycs, as the stdlib's), and the
result is one deterministic layer. Errors name the wheel, the image and the fix; nothing is written then.
"""

from __future__ import annotations

import argparse
import base64
import configparser
import csv
import hashlib
import io
import posixpath
import re
import struct
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

from tools import cli
from tools.architectures import ARCHITECTURES
from tools.image.chroot import ChrootError
from tools.image.compile_pyc import CompilePycError
from tools.image.unpack import UnpackError
from tools.oci.layout import LayoutError
from tools.python.image_python import Facts, ImagePythonError, unpacked_image
from tools.python.wheel_tags import WheelName, WheelNameError, normalize_name
from tools.tarball import COMPRESSIONS, Layer, normalize_path

SITE = "usr/lib/python3/dist-packages"
PREFIX = "usr"
INSTALLER = "distroless-python\n"
FILE_MODE, EXECUTABLE_MODE = 0o644, 0o755
SIGNATURES = ("RECORD.jws", "RECORD.p7s")
# ELF machine numbers -> kernel names: the images' architectures, and others a foreign wheel may be built for.
ELF_MACHINES = {3: "i386", 8: "mips", 21: "ppc64", 22: "s390x", 40: "arm"} | {
    architecture.elf_machine: architecture.machine for architecture in ARCHITECTURES.values()
}
ENTRY_POINT = re.compile(r"^(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+))?\s*(\[.*\])?\s*$")


class InstallError(Exception):
    """A wheel cannot be installed into this image; the message names the wheel, the problem and the fix."""


@dataclass
class Installed:
    wheel: str
    project: str
    dist_info: str  # inside the image
    files: dict[str, bytes] = field(default_factory=dict)  # image path -> contents
    modes: dict[str, int] = field(default_factory=dict)
    requires: list[str] = field(default_factory=list)


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def elf_machine(data: bytes) -> str | None:
    """The machine an ELF file is built for, None for a non-ELF file."""
    if data[:4] != b"\x7fELF" or len(data) < 20:
        return None
    endian = "<" if data[5] == 1 else ">"
    (machine,) = struct.unpack_from(endian + "H", data, 18)
    return ELF_MACHINES.get(machine, f"ELF machine {machine}")


def choose(wheels: list[Path], facts: Facts) -> tuple[list[Path], list[str]]:
    """The best fitting wheel per project; notes about the others. Fails if a project has no fitting wheel."""
    interpreter = facts.interpreter()
    by_project: dict[str, list[tuple[int | None, WheelName, Path]]] = {}
    for path in wheels:
        try:
            wheel = WheelName.parse(path.name)
        except WheelNameError as error:
            raise InstallError(str(error)) from error
        by_project.setdefault(wheel.name, []).append((interpreter.preference(wheel), wheel, path))
    chosen, notes = [], []
    for project, candidates in sorted(by_project.items()):
        fitting = sorted((rank, wheel.filename, path) for rank, wheel, path in candidates if rank is not None)
        if not fitting:
            names = ", ".join(sorted(wheel.filename for _, wheel, _ in candidates))
            raise InstallError(
                f"{project}: no wheel fits the image's Python, {facts.describe()} (given: {names}); lock a wheel "
                f"for cp{interpreter.major}{interpreter.minor} manylinux {interpreter.machine} with glibc at most "
                f"{interpreter.glibc[0]}.{interpreter.glibc[1]} (re-run the lock tool for this image's Python and "
                "architecture)"
            )
        chosen.append(fitting[0][2])
        notes += [f"{project}: {filename} not used; {fitting[0][1]} fits better" for _, filename, _ in fitting[1:]]
    return chosen, notes


def _check_record(wheel: str, archive: zipfile.ZipFile, dist_info: str) -> None:
    try:
        record = archive.read(f"{dist_info}/RECORD").decode("utf-8")
    except KeyError as error:
        raise InstallError(f"{wheel}: no {dist_info}/RECORD; the wheel is malformed") from error
    listed: dict[str, tuple[str, str]] = {}
    for row in csv.reader(io.StringIO(record)):
        if row:
            listed[row[0]] = (row[1] if len(row) > 1 else "", row[2] if len(row) > 2 else "")
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = info.filename
        if name in (f"{dist_info}/RECORD", *(f"{dist_info}/{s}" for s in SIGNATURES)):
            continue
        if name not in listed:
            raise InstallError(f"{wheel}: {name} is not listed in its RECORD; the wheel is corrupt or tampered with")
        expected, size = listed[name]
        data = archive.read(info)
        if not expected:
            raise InstallError(f"{wheel}: RECORD gives {name} no hash; the wheel is malformed")
        algorithm = expected.partition("=")[0]
        if algorithm != "sha256":
            raise InstallError(f"{wheel}: RECORD hashes {name} with {algorithm}; only sha256 is accepted")
        if record_hash(data) != expected or (size and int(size) != len(data)):
            raise InstallError(f"{wheel}: {name} does not match the sha256 and size in its RECORD; the wheel is corrupt")


def _entry_point_script(python: str, value: str, where: str) -> bytes:
    match = ENTRY_POINT.match(value)
    if not match or not match.group("attr"):
        raise InstallError(f"{where}: entry point {value!r} is not module:attribute")
    module, attribute = match.group("module"), match.group("attr")
    head = attribute.split(".")[0]
    return (
        f"#!{python}\n"
        "import sys\n"
        f"from {module} import {head}\n"
        "if __name__ == \"__main__\":\n"
        f"    sys.exit({attribute}())\n"
    ).encode()


def install_wheel(path: Path, facts: Facts, python: str, site: str = SITE, prefix: str = PREFIX) -> Installed:
    """Reads one wheel into the files it installs (image paths), checked as the module docstring says."""
    wheel = WheelName.parse(path.name)
    site, prefix, python = normalize_path(site), normalize_path(prefix), "/" + normalize_path(python)
    interpreter = facts.interpreter()
    version = f"{interpreter.major}.{interpreter.minor}"
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise InstallError(f"{path.name}: not a readable wheel (zip): {error}") from error
    with archive:
        names = [info.filename for info in archive.infolist()]
        for name in names:
            if name.startswith("/") or ".." in name.split("/") or "\\" in name:
                raise InstallError(f"{path.name}: unsafe path {name!r} in the archive")
        dist_infos = sorted({name.split("/")[0] for name in names if name.split("/")[0].endswith(".dist-info")})
        dist_infos = [d for d in dist_infos if normalize_name(d[: -len(".dist-info")].rsplit("-", 1)[0]) == wheel.name]
        if len(dist_infos) != 1:
            raise InstallError(f"{path.name}: expected one {wheel.name}-VERSION.dist-info directory, found {dist_infos or 'none'}")
        dist_info = dist_infos[0]
        metadata_text = archive.read(f"{dist_info}/WHEEL").decode("utf-8", errors="replace")
        wheel_version = HeaderParser().parsestr(metadata_text).get("Wheel-Version", "")
        if wheel_version.split(".")[0] != "1":
            raise InstallError(f"{path.name}: Wheel-Version {wheel_version!r} is not supported (only 1.x)")
        _check_record(path.name, archive, dist_info)
        data_dir = dist_info[: -len(".dist-info")] + ".data"
        schemes = {
            "purelib": site, "platlib": site, "scripts": f"{prefix}/bin",
            "headers": f"{prefix}/include/python{version}/{wheel.name}", "data": prefix,
        }
        installed = Installed(path.name, wheel.name, f"{site}/{dist_info}")
        for info in archive.infolist():
            name = info.filename
            if info.is_dir() or name in (f"{dist_info}/RECORD", *(f"{dist_info}/{s}" for s in SIGNATURES)):
                continue
            data = archive.read(info)
            mode = EXECUTABLE_MODE if (info.external_attr >> 16) & 0o111 else FILE_MODE
            top, _, rest = name.partition("/")
            if top == data_dir:
                key, _, inner = rest.partition("/")
                if key not in schemes or not inner:
                    raise InstallError(f"{path.name}: {name}: unknown .data directory {key!r} (known: {', '.join(schemes)})")
                target = f"{schemes[key]}/{inner}"
                if key == "scripts":
                    mode = EXECUTABLE_MODE
                    if data.startswith((b"#!python", b"#!pythonw")):
                        data = f"#!{python}".encode() + data[data.index(b"\n") if b"\n" in data else len(data):]
            else:
                target = f"{site}/{name}"
            _check_native(path.name, name, data, facts)
            _add(installed, normalize_path(target), data, mode)
        metadata = HeaderParser().parsestr(archive.read(f"{dist_info}/METADATA").decode("utf-8", errors="replace"))
        installed.requires = [value for value in metadata.get_all("Requires-Dist") or [] if ";" not in value]
        if f"{dist_info}/entry_points.txt" in names:
            parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
            parser.optionxform = str  # type: ignore[assignment,method-assign]
            parser.read_string(archive.read(f"{dist_info}/entry_points.txt").decode("utf-8"))
            for section in ("console_scripts", "gui_scripts"):
                if parser.has_section(section):
                    for script, value in parser.items(section):
                        target = f"{prefix}/bin/{script}"
                        _add(installed, target, _entry_point_script(python, value, path.name), EXECUTABLE_MODE)
    _add(installed, f"{installed.dist_info}/INSTALLER", INSTALLER.encode(), FILE_MODE)
    return installed


def _add(installed: Installed, target: str, data: bytes, mode: int) -> None:
    if target in installed.files:
        raise InstallError(f"{installed.wheel}: installs /{target} twice")
    installed.files[target] = data
    installed.modes[target] = mode


def _check_native(wheel: str, name: str, data: bytes, facts: Facts) -> None:
    machine = elf_machine(data)
    if machine is not None and machine != facts.machine:
        raise InstallError(
            f"{wheel}: {name} is native code for {machine}, but the image runs {facts.machine}: use the wheel for "
            f"{facts.machine} (lock one per architecture)"
        )
    base = posixpath.basename(name)
    if ".cpython-" in base and base.endswith(".so") and not base.endswith(facts.ext_suffix):
        raise InstallError(
            f"{wheel}: {name} is an extension module for another CPython ABI; the image's interpreter loads "
            f"*{facts.ext_suffix} ({facts.describe()}): use a wheel built for this Python"
        )


def check_requirements(installed: list[Installed]) -> None:
    """Every unconditional Requires-Dist of every installed project is installed too."""
    projects = {dist.project for dist in installed}
    for dist in installed:
        for requirement in dist.requires:
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
            if match and normalize_name(match.group(1)) not in projects:
                raise InstallError(
                    f"{dist.wheel} requires {requirement.strip()}, which the lock does not list: add "
                    f"{normalize_name(match.group(1))} (pinned, with its hashes) to the requirements and re-lock"
                )


def build_layer(installed: list[Installed], pycs: Layer) -> Layer:
    """The layer of all installed files and their pycs, with each .dist-info's RECORD rewritten to list them."""
    layer = Layer()
    owner: dict[str, Installed] = {}
    for dist in installed:
        for path, data in dist.files.items():
            if path in owner:
                raise InstallError(f"{dist.wheel} and {owner[path].wheel} both install /{path}; they cannot be installed together")
            owner[path] = dist
            layer.add_file(path, data, dist.modes[path])
    pyc_owner: dict[str, list[tuple[str, bytes]]] = {}
    for entry in pycs.entries.values():
        if not entry.path.endswith(".pyc"):
            continue
        directory, name = posixpath.split(entry.path)
        source = posixpath.join(posixpath.dirname(directory), name.split(".")[0] + ".py")
        dist = owner.get(source)
        if dist is not None:
            pyc_owner.setdefault(dist.dist_info, []).append((entry.path, entry.data))
    layer.merge(pycs)
    for dist in installed:
        site = posixpath.dirname(dist.dist_info)
        rows = [(posixpath.relpath(path, site), record_hash(data), str(len(data))) for path, data in dist.files.items()]
        rows += [(posixpath.relpath(path, site), record_hash(data), str(len(data))) for path, data in pyc_owner.get(dist.dist_info, [])]
        rows.append((posixpath.relpath(f"{dist.dist_info}/RECORD", site), "", ""))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows(sorted(rows))
        layer.add_file(f"{dist.dist_info}/RECORD", buffer.getvalue().encode(), FILE_MODE)
    return layer


def install(base: Path, wheels: list[Path], python: str, site: str, emulator: Path | None) -> tuple[Layer, Facts, list[str]]:
    site = normalize_path(site)
    with unpacked_image(base, python, emulator=emulator) as image:
        facts = image.facts()
        if "/" + site not in facts.site_packages:
            raise InstallError(
                f"/{site} is not on the image's site-packages path ({', '.join(facts.site_packages)}): install into one of those"
            )
        chosen, notes = choose(wheels, facts)
        installed = [install_wheel(path, facts, image.python, site) for path in chosen]
        check_requirements(installed)
        files = build_layer(installed, Layer())
        with tempfile.TemporaryDirectory(prefix="install_wheels.") as tmp:
            packages = Path(tmp) / "packages.tar"
            files.write(packages, "none")
            image.apply(packages)
        pycs = image.compile(site)
    return build_layer(installed, pycs), facts, notes


@cli.tool("install_wheels", InstallError, ImagePythonError, ChrootError, CompilePycError, UnpackError, LayoutError)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the image to install into (an OCI layout of one image)")
    parser.add_argument("--wheel", type=Path, action="append", default=[], help="a wheel (repeatable)")
    parser.add_argument("--python", default="usr/bin/python3", help="the interpreter inside the image")
    parser.add_argument("--site", default=SITE, help="the site directory to install into, inside the image")
    parser.add_argument("--emulator", type=Path, help="a static qemu user-mode emulator for another architecture")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--compression", choices=COMPRESSIONS, default="gzip")
    args = parser.parse_args(argv)
    layer, facts, notes = install(args.base, args.wheel, args.python, args.site, args.emulator)
    for note in notes:
        print(f"install_wheels: note: {note}", file=sys.stderr)
    layer.write(args.output, args.compression)
    print(f"install_wheels: installed {len(args.wheel) - len(notes)} wheels for {facts.describe()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
