"""An arm64 image's own ldconfig and python, run by ld_so_cache and compile_pyc under qemu.

The layers are made by Bazel from the lock's real arm64 .debs (see tools/image/BUILD.bazel) and passed
in ARM64_LIBC_LAYER (libc6, libc-bin) and ARM64_PYTHON_LAYER (python3.11 and what it needs to start).
On an amd64 machine the programs run under the static qemu-aarch64 the tools find on PATH; the build
root has it (qemu-user) and runs tests as root, so under Bazel a missing one fails these tests.
"""

from __future__ import annotations

import io
import os
import struct
import time
from pathlib import Path

import pytest

from tools.image import chroot, compile_pyc, ld_so_cache
from tools.image.chroot import EmulatorError
from tools.image.tests import host_root
from tools.image.unpack import unpack_layers
from tools.tarball import iter_members, read_layer

needs_root = host_root.needs_root

STDLIB = "usr/lib/python3.11"
PYTHON = "usr/bin/python3.11"
# importlib.util.MAGIC_NUMBER of Python 3.11 (3495).
PYC_MAGIC = (3495).to_bytes(2, "little") + b"\r\n"

# glibc's ld.so.cache "new" format: the header, then one entry per library (see glibc's dl-cache.h).
CACHE_MAGIC = b"glibc-ld.so.cache1.1"
CACHE_HEADER = struct.Struct("<20sIIB3xI12x")  # magic+version, nlibs, len_strings, flags, extension_offset
CACHE_ENTRY = struct.Struct("<iIIIQ")  # flags, key, value, osversion, hwcap
FLAG_ELF_LIBC6 = 0x0003
FLAG_AARCH64_LIB64 = 0x0A00


def layer(variable: str) -> Path:
    path = os.environ.get(variable, "")
    host_root.require(bool(path) and Path(path).is_file(), f"{variable} names no layer: run this test with Bazel")
    return Path(path)


def image_layers() -> list[str]:
    return [str(layer("ARM64_LIBC_LAYER")), str(layer("ARM64_PYTHON_LAYER"))]


def emulator() -> Path | None:
    """The emulator the tools pick for arm64 here (None on an arm64 machine); fails when there is none."""
    try:
        return chroot.select_emulator("arm64")
    except EmulatorError as error:
        host_root.require(False, str(error))
        raise


def cache_entries(cache: bytes) -> list[tuple[int, str, str]]:
    """(flags, soname, path) of each library in an ld.so.cache, old+new or new format."""
    start = cache.find(CACHE_MAGIC)
    assert start >= 0, "no glibc-ld.so.cache1.1 header in the cache"
    _, count, _, _, _ = CACHE_HEADER.unpack_from(cache, start)

    def string(offset: int) -> str:
        return cache[start + offset : cache.index(b"\0", start + offset)].decode()

    entries = []
    for index in range(count):
        flags, key, value, _, _ = CACHE_ENTRY.unpack_from(cache, start + CACHE_HEADER.size + index * CACHE_ENTRY.size)
        entries.append((flags, string(key), string(value)))
    return entries


@needs_root
def test_ldconfig_writes_an_aarch64_cache_reproducibly(tmp_path: Path) -> None:
    emulator()
    layers = image_layers()
    outputs = [tmp_path / "1.tar.gz", tmp_path / "2.tar.gz"]
    for out in outputs:
        started = time.monotonic()
        assert ld_so_cache.main(["--layer", *layers, "--architecture", "arm64", "--output", str(out)]) == 0
        print(f"arm64 ldconfig: {time.monotonic() - started:.1f}s")
    assert outputs[0].read_bytes() == outputs[1].read_bytes()

    entries = read_layer(outputs[0]).entries
    assert sorted(entries) == ["etc", "etc/ld.so.cache"]
    libraries = cache_entries(entries["etc/ld.so.cache"].data)
    aarch64 = FLAG_ELF_LIBC6 | FLAG_AARCH64_LIB64
    # On a merged-/usr root ldconfig may record either /lib or /usr/lib: both name the same files.
    found = {(flags, soname, path.removeprefix("/usr")) for flags, soname, path in libraries}
    for soname in ["libc.so.6", "libexpat.so.1", "libz.so.1"]:
        assert (aarch64, soname, f"/lib/aarch64-linux-gnu/{soname}") in found, soname
    assert {flags for flags, _, _ in libraries} == {aarch64}


@needs_root
def test_python_compiles_the_stdlib_reproducibly(tmp_path: Path) -> None:
    emulator()
    layers = image_layers()
    outputs = [tmp_path / "1.tar.gz", tmp_path / "2.tar.gz"]
    for out in outputs:
        started = time.monotonic()
        arguments = ["--python", PYTHON, "--stdlib", STDLIB, "--architecture", "arm64", "--output", str(out)]
        assert compile_pyc.main(["--layer", *layers, *arguments]) == 0
        print(f"arm64 stdlib compile: {time.monotonic() - started:.1f}s")
    assert outputs[0].read_bytes() == outputs[1].read_bytes()

    pycs = {info.name: data for info, data in iter_members(io.BytesIO(outputs[0].read_bytes())) if info.isreg()}
    assert len(pycs) > 400
    assert all(name.startswith(STDLIB + "/") and "/__pycache__/" in name and name.endswith(".cpython-311.pyc") for name in pycs)
    # The arm64 stdlib itself was compiled: its sysconfig data is aarch64's.
    assert f"{STDLIB}/__pycache__/_sysconfigdata__aarch64-linux-gnu.cpython-311.pyc" in pycs
    assert f"{STDLIB}/json/__pycache__/decoder.cpython-311.pyc" in pycs
    for name, data in pycs.items():
        assert data[:4] == PYC_MAGIC, name
        assert int.from_bytes(data[4:8], "little") == 0b01, name  # hash-based, unchecked


@needs_root
def test_python_under_qemu_is_aarch64_with_the_fixed_hash_seed(tmp_path: Path) -> None:
    """What the tools give the image's python reaches it through qemu: PYTHONHASHSEED=0 disables hash
    randomization, so set constants are written in the same order on every run."""
    qemu = emulator()
    root = tmp_path / "root"
    unpack_layers([Path(path) for path in image_layers()], root)
    probe = "import platform, sys; print(platform.machine(), sys.flags.hash_randomization, hash('distroless'), list({'a', 'b', 'c', 'd'}))"
    argv = [f"/{PYTHON}", *compile_pyc.PYTHON_FLAGS, "-c", probe]
    runs = [chroot.run_in_root(root, argv, env=compile_pyc.PYTHON_ENV, emulator=qemu).stdout for _ in range(2)]
    assert runs[0] == runs[1]
    machine, randomization, _ = runs[0].split(maxsplit=2)
    assert (machine, randomization) == ("aarch64", "0")
    assert not os.path.lexists(root / ".emulator")


@needs_root
def test_without_its_architecture_the_image_does_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if chroot.machine_architecture() == "arm64":
        pytest.skip("this machine runs arm64 natively")
    out = tmp_path / "out.tar.gz"
    assert ld_so_cache.main(["--layer", *image_layers(), "--output", str(out)]) == 1
    error = capsys.readouterr().err
    assert "Exec format error" in error and "pass the image's --architecture" in error
    assert not out.exists()


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
