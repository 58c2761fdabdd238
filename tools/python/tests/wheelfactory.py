"""Test helper: small synthetic wheels, with a correct RECORD unless told otherwise."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(directory: Path, filename: str, files: dict[str, bytes], *, requires: tuple[str, ...] = (),
               entry_points: str = "", corrupt: str = "", modes: dict[str, int] | None = None,
               extras: tuple[str, ...] = ()) -> Path:
    """A wheel named `filename` holding `files`, its .dist-info and a RECORD; `corrupt` names a file whose
    RECORD hash is wrong."""
    name, version = filename.split("-")[:2]
    dist_info = f"{name}-{version}.dist-info"
    contents = dict(files)
    contents[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Provides-Extra: {e}\n" for e in extras)
        + "".join(f"Requires-Dist: {r}\n" for r in requires)
    ).encode()
    contents[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\n"
    if entry_points:
        contents[f"{dist_info}/entry_points.txt"] = entry_points.encode()
    record = []
    for path, data in contents.items():
        digest = record_hash(b"tampered" if path == corrupt else data)
        record.append(f"{path},{digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / filename
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in contents.items():
            info = zipfile.ZipInfo(member)
            info.external_attr = ((modes or {}).get(member, 0o644)) << 16
            archive.writestr(info, data)
    return path


def elf(machine: int) -> bytes:
    """The first bytes of a little-endian 64-bit ELF shared object for `machine` (62 x86_64, 183 aarch64)."""
    header = bytearray(64)
    header[:4] = b"\x7fELF"
    header[4], header[5], header[6] = 2, 1, 1
    header[16:18] = (3).to_bytes(2, "little")
    header[18:20] = machine.to_bytes(2, "little")
    return bytes(header)
