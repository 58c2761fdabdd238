"""Tests for tools/image/ld_so_cache.py.

The error paths run as any user. The runs that chroot need root (the build runs as root): they use a
fake ldconfig, a shell script run by the host's sh copied into the layers, and the host's real
ldconfig over a few host libraries, natively and under the machine's own qemu. test_arm64_image.py
runs a real arm64 ldconfig.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tools.image import chroot, ld_so_cache
from tools.image.tests import host_root
from tools.tarball import Layer, read_layer

needs_root = host_root.needs_root

# A stand-in ldconfig: checks its arguments, writes a cache, and litters the root with what a real one
# could leave behind (a new symlink, an aux cache), none of which may reach the output layer.
FAKE_LDCONFIG = """#!/bin/sh
[ "$*" = "-X -i" ] || { echo "unexpected arguments: $*" >&2; exit 3; }
echo "fake cache" > /etc/ld.so.cache
echo "aux" > /var/cache/ldconfig/aux-cache
echo "junk" > /lib/libjunk.so.1
"""


def write(layer: Layer, path: Path) -> Path:
    layer.write(path, "none")
    return path


def fake_ldconfig_layer(ldconfig_path: str, script: str = FAKE_LDCONFIG) -> Layer:
    layer = Layer()
    layer.add_file(ldconfig_path, script.encode(), 0o755)
    layer.add_dir("etc")
    layer.add_dir("var/cache/ldconfig")
    layer.add_dir("lib")
    return layer


def test_no_ldconfig_in_the_layers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = Layer()
    layer.add_file("lib/x86_64-linux-gnu/libc.so.6", b"\x7fELF")
    layer.add_file("usr/bin/ldconfig", b"not where ldconfig lives", 0o755)
    out = tmp_path / "out.tar.gz"
    assert ld_so_cache.main(["--layer", str(write(layer, tmp_path / "l.tar")), "--output", str(out)]) == 1
    assert "no ldconfig in the image's layers (sbin/ldconfig or usr/sbin/ldconfig); add libc-bin" in capsys.readouterr().err
    assert not out.exists()


def test_not_root_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    layers = [str(write(fake_ldconfig_layer("sbin/ldconfig"), tmp_path / "l.tar"))]
    out = tmp_path / "out.tar.gz"
    assert ld_so_cache.main(["--layer", *layers, "--output", str(out)]) == 1
    assert "ld_so_cache must run as root" in capsys.readouterr().err
    assert not out.exists()


def test_foreign_image_without_qemu_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(chroot, "EMULATOR_DIRS", ())
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(chroot.platform, "machine", lambda: "x86_64")
    layers = [str(write(fake_ldconfig_layer("sbin/ldconfig"), tmp_path / "l.tar"))]
    out = tmp_path / "out.tar.gz"
    assert ld_so_cache.main(["--layer", *layers, "--architecture", "arm64", "--output", str(out)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("ld_so_cache: error: the image is arm64 but this machine is x86_64")
    assert "qemu-aarch64" in error and "install Debian's qemu-user package" in error
    assert not out.exists()


def test_non_static_emulator_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    emulator = tmp_path / "qemu-aarch64"
    emulator.write_bytes(host_root.fake_elf("x86_64", "/lib64/ld-linux-x86-64.so.2"))
    emulator.chmod(0o755)
    layers = [str(write(fake_ldconfig_layer("sbin/ldconfig"), tmp_path / "l.tar"))]
    out = tmp_path / "out.tar.gz"
    assert ld_so_cache.main(["--layer", *layers, "--emulator", str(emulator), "--output", str(out)]) == 1
    assert f"ld_so_cache: error: emulator {emulator} is dynamically linked" in capsys.readouterr().err
    assert not out.exists()


@needs_root
@pytest.mark.parametrize("ldconfig_path", ["sbin/ldconfig", "usr/sbin/ldconfig"])
def test_output_holds_only_the_cache(tmp_path: Path, ldconfig_path: str) -> None:
    shell, _ = host_root.shell_layer()
    layers = [write(shell, tmp_path / "sh.tar"), write(fake_ldconfig_layer(ldconfig_path), tmp_path / "ldconfig.tar")]
    out = tmp_path / "out.tar.gz"
    assert ld_so_cache.main(["--layer", *map(str, layers), "--output", str(out)]) == 0
    entries = read_layer(out).entries
    assert sorted(entries) == ["etc", "etc/ld.so.cache"]
    assert entries["etc/ld.so.cache"].data == b"fake cache\n"
    assert entries["etc/ld.so.cache"].mode == 0o644


@needs_root
def test_merged_usr_sbin_symlink(tmp_path: Path) -> None:
    shell, _ = host_root.shell_layer()
    usr_sbin = fake_ldconfig_layer("usr/sbin/ldconfig")
    usr_sbin.add_symlink("sbin", "usr/sbin")
    layers = [write(shell, tmp_path / "sh.tar"), write(usr_sbin, tmp_path / "ldconfig.tar")]
    layer = ld_so_cache.cache_layer(layers)
    assert layer.entries["etc/ld.so.cache"].data == b"fake cache\n"


@needs_root
def test_a_stale_cache_in_the_layers_is_not_taken_for_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shell, _ = host_root.shell_layer()
    ldconfig = fake_ldconfig_layer("sbin/ldconfig", "#!/bin/sh\nexit 0\n")
    ldconfig.add_file("etc/ld.so.cache", b"stale")
    layers = [str(write(shell, tmp_path / "sh.tar")), str(write(ldconfig, tmp_path / "ldconfig.tar"))]
    assert ld_so_cache.main(["--layer", *layers, "--output", str(tmp_path / "out.tar")]) == 1
    assert "wrote no /etc/ld.so.cache" in capsys.readouterr().err


@needs_root
def test_failing_ldconfig_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shell, _ = host_root.shell_layer()
    ldconfig = fake_ldconfig_layer("sbin/ldconfig", "#!/bin/sh\necho 'cannot do it' >&2\nexit 7\n")
    layers = [str(write(shell, tmp_path / "sh.tar")), str(write(ldconfig, tmp_path / "ldconfig.tar"))]
    assert ld_so_cache.main(["--layer", *layers, "--output", str(tmp_path / "out.tar")]) == 1
    error = capsys.readouterr().err
    assert "/sbin/ldconfig -X -i failed in the image (exit 7)" in error and "cannot do it" in error


def host_ldconfig() -> str | None:
    for candidate in (shutil.which("ldconfig"), "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        if candidate and os.path.isfile(candidate):
            with open(candidate, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    return candidate
    return None


def real_ldconfig_layers(tmp_path: Path) -> list[str]:
    """The host's ldconfig and libraries: the shell's loader and libc, in the host's library directories."""
    ldconfig = host_ldconfig()
    if ldconfig is None:
        pytest.fail("the host has no ELF ldconfig (libc-bin is essential in Debian)")
    layer, _ = host_root.shell_layer()
    host_ldconfig_layer = Layer()
    host_root.add_host_program(host_ldconfig_layer, ldconfig)
    image = Layer()
    for path, entry in host_ldconfig_layer.entries.items():
        image.add_file("sbin/ldconfig" if "/" + path == ldconfig else path, entry.data, entry.mode)
    image.add_file("etc/ld.so.conf", b"")
    return [str(write(layer, tmp_path / "libs.tar")), str(write(image, tmp_path / "ldconfig.tar"))]


@needs_root
def test_real_ldconfig_is_deterministic(tmp_path: Path) -> None:
    layers = real_ldconfig_layers(tmp_path)
    first, second = tmp_path / "1.tar.gz", tmp_path / "2.tar.gz"
    assert ld_so_cache.main(["--layer", *layers, "--output", str(first)]) == 0
    assert ld_so_cache.main(["--layer", *layers, "--output", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    entries = read_layer(first).entries
    assert sorted(entries) == ["etc", "etc/ld.so.cache"]
    assert b"libc.so.6" in entries["etc/ld.so.cache"].data


@needs_root
def test_real_ldconfig_under_qemu_writes_the_same_cache(tmp_path: Path) -> None:
    """The machine's own qemu (qemu-x86_64 on amd64) running the host's ldconfig: the cache is the native one."""
    emulator = host_root.machine_emulator()
    layers = real_ldconfig_layers(tmp_path)
    native, emulated = tmp_path / "native.tar.gz", tmp_path / "emulated.tar.gz"
    assert ld_so_cache.main(["--layer", *layers, "--output", str(native)]) == 0
    assert ld_so_cache.main(["--layer", *layers, "--emulator", str(emulator), "--output", str(emulated)]) == 0
    assert sorted(read_layer(emulated).entries) == ["etc", "etc/ld.so.cache"]
    assert emulated.read_bytes() == native.read_bytes()


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
