"""Tests for tools/image/chroot.py: choosing the emulator for an image of another architecture, and
running a program under it.

Choosing and checking emulators runs as any user, with synthetic ELF files. The runs that chroot need
root; one runs a stand-in emulator (a shell script) to check the command line and that the copy is
gone afterwards, another the machine's real qemu for its own architecture.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.image import chroot
from tools.image.chroot import ChrootError, EmulatorError
from tools.image.tests import host_root
from tools.image.unpack import unpack_layers
from tools.tarball import Layer

needs_root = host_root.needs_root


def executable(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o755)
    return path


@pytest.fixture
def no_default_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Searches only the PATH a test gives, not /usr/bin, where the build root has the real qemu."""
    monkeypatch.setattr(chroot, "EMULATOR_DIRS", ())


def test_command_without_an_emulator_is_the_program() -> None:
    assert chroot.command(["/sbin/ldconfig", "-X", "-i"], None) == ["/sbin/ldconfig", "-X", "-i"]


def test_command_with_an_emulator_runs_the_copy_in_the_root() -> None:
    command = chroot.command(["/usr/bin/python3.9", "-S", "-c", "pass"], Path("/usr/bin/qemu-aarch64"))
    assert command == ["/.emulator/qemu", "/usr/bin/python3.9", "-S", "-c", "pass"]


@pytest.mark.parametrize(
    ("machine", "architecture"),
    [("x86_64", "amd64"), ("AMD64", "amd64"), ("aarch64", "arm64"), ("arm64", "arm64"), ("riscv64", "riscv64"), ("mips", None)],
)
def test_machine_architecture(machine: str, architecture: str | None) -> None:
    assert chroot.machine_architecture(machine) == architecture


@pytest.mark.parametrize(("architecture", "machine"), [(None, "x86_64"), ("amd64", "x86_64"), ("arm64", "aarch64")])
def test_native_images_need_no_emulator(architecture: str | None, machine: str, no_default_dirs: None) -> None:
    assert chroot.select_emulator(architecture, machine=machine, search_path="") is None


@pytest.mark.parametrize(("architecture", "machine", "qemu"), [("arm64", "x86_64", "qemu-aarch64"), ("amd64", "aarch64", "qemu-x86_64")])
def test_foreign_images_use_qemu_from_path(tmp_path: Path, architecture: str, machine: str, qemu: str, no_default_dirs: None) -> None:
    emulator = executable(tmp_path / "bin" / qemu, host_root.fake_elf())
    search_path = os.pathsep.join([str(tmp_path / "empty"), str(tmp_path / "bin")])
    assert chroot.select_emulator(architecture, machine=machine, search_path=search_path) == emulator


def test_an_unknown_machine_takes_every_image_as_foreign(tmp_path: Path, no_default_dirs: None) -> None:
    emulator = executable(tmp_path / "qemu-x86_64", host_root.fake_elf())
    assert chroot.select_emulator("amd64", machine="mips", search_path=str(tmp_path)) == emulator


def test_the_static_build_is_preferred_over_a_dynamic_one(tmp_path: Path, no_default_dirs: None) -> None:
    executable(tmp_path / "qemu-aarch64", host_root.fake_elf("x86_64", "/lib64/ld-linux-x86-64.so.2"))
    static = executable(tmp_path / "qemu-aarch64-static", host_root.fake_elf())
    assert chroot.select_emulator("arm64", machine="x86_64", search_path=str(tmp_path)) == static


def test_default_directories_are_searched_after_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator = executable(tmp_path / "usr-bin" / "qemu-aarch64", host_root.fake_elf())
    monkeypatch.setattr(chroot, "EMULATOR_DIRS", (str(tmp_path / "usr-bin"),))
    assert chroot.select_emulator("arm64", machine="x86_64", search_path=str(tmp_path / "empty")) == emulator


def test_no_emulator_is_a_clear_error(tmp_path: Path, no_default_dirs: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chroot.platform, "machine", lambda: "x86_64")
    with pytest.raises(EmulatorError) as error:
        chroot.select_emulator("arm64", search_path=str(tmp_path))
    message = str(error.value)
    assert "the image is arm64 but this machine is x86_64" in message
    assert "none of qemu-aarch64, qemu-aarch64-static is in PATH" in message
    assert "install Debian's qemu-user package" in message and "--emulator PATH" in message


def test_only_a_dynamic_emulator_is_a_clear_error(tmp_path: Path, no_default_dirs: None) -> None:
    executable(tmp_path / "qemu-aarch64", host_root.fake_elf("x86_64", "/lib64/ld-linux-x86-64.so.2"))
    with pytest.raises(EmulatorError) as error:
        chroot.select_emulator("arm64", machine="x86_64", search_path=str(tmp_path))
    message = str(error.value)
    assert f"emulator {tmp_path}/qemu-aarch64 is dynamically linked (it needs /lib64/ld-linux-x86-64.so.2" in message
    assert "qemu-user package" in message


def test_an_explicit_emulator_wins(tmp_path: Path, no_default_dirs: None) -> None:
    emulator = executable(tmp_path / "my-qemu", host_root.fake_elf())
    # Even for an image of the machine's own architecture, and with another qemu on PATH.
    executable(tmp_path / "bin" / "qemu-aarch64", host_root.fake_elf())
    assert chroot.select_emulator("amd64", emulator, machine="x86_64", search_path=str(tmp_path / "bin")) == emulator
    assert chroot.select_emulator("arm64", emulator, machine="x86_64", search_path=str(tmp_path / "bin")) == emulator
    assert chroot.select_emulator(None, emulator) == emulator


@pytest.mark.parametrize(
    ("data", "mode", "message"),
    [
        (None, 0o755, "does not exist or is not a file; install Debian's qemu-user package"),
        (host_root.fake_elf(), 0o644, "is not executable"),
        (b"#!/bin/sh\nexec qemu-aarch64 \"$@\"\n", 0o755, "is not an ELF executable"),
        (host_root.fake_elf("x86_64", "/lib64/ld-linux-x86-64.so.2"), 0o755, "is dynamically linked (it needs /lib64/ld-linux-x86-64.so.2"),
    ],
)
def test_an_unusable_explicit_emulator_is_a_clear_error(tmp_path: Path, data: bytes | None, mode: int, message: str) -> None:
    emulator = tmp_path / "qemu"
    if data is not None:
        emulator.write_bytes(data)
        emulator.chmod(mode)
    with pytest.raises(EmulatorError, match="emulator .*qemu") as error:
        chroot.select_emulator("arm64", emulator)
    assert message in str(error.value)


def test_the_hosts_shell_is_not_a_usable_emulator(tmp_path: Path) -> None:
    shell = Path(host_root.host_shell())
    if host_root.elf_interpreter(shell) is None:
        pytest.skip(f"{shell} is statically linked here")
    with pytest.raises(EmulatorError, match="is dynamically linked"):
        chroot.check_emulator(shell)


def test_the_emulator_copy_is_removed_afterwards_even_on_failure(tmp_path: Path) -> None:
    emulator = executable(tmp_path / "qemu", host_root.fake_elf())
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(RuntimeError):
        with chroot.installed_emulator(root, emulator):
            copy = root / ".emulator" / "qemu"
            assert copy.read_bytes() == emulator.read_bytes()
            assert copy.stat().st_mode & 0o7777 == 0o755 and (root / ".emulator").stat().st_mode & 0o7777 == 0o755
            raise RuntimeError("the program failed")
    assert list(root.iterdir()) == []


def test_layers_holding_the_emulator_directory_are_refused(tmp_path: Path) -> None:
    emulator = executable(tmp_path / "qemu", host_root.fake_elf())
    root = tmp_path / "root"
    (root / ".emulator").mkdir(parents=True)
    with pytest.raises(EmulatorError, match="the image's layers hold /.emulator"):
        with chroot.installed_emulator(root, emulator):
            pass
    assert (root / ".emulator").is_dir()  # the image's own, left alone


def shell_root(tmp_path: Path, extra: Layer | None = None) -> Path:
    shell, _ = host_root.shell_layer()
    layers = [tmp_path / "sh.tar"]
    shell.write(layers[0], "none")
    if extra is not None:
        layers.append(tmp_path / "extra.tar")
        extra.write(layers[1], "none")
    root = tmp_path / "root"
    unpack_layers(layers, root)
    return root


# A stand-in emulator: reports how it was called and what the root holds at /.emulator.
FAKE_EMULATOR = b"""#!/bin/sh
echo "argv0=$0"
echo "args=$*"
echo "hashseed=$PYTHONHASHSEED"
for f in /.emulator/*; do echo "$f"; done
"""


@needs_root
def test_run_in_root_runs_the_program_under_the_emulator_copy(tmp_path: Path) -> None:
    root = shell_root(tmp_path)
    emulator = executable(tmp_path / "fake-qemu", FAKE_EMULATOR)
    result = chroot.run_in_root(root, ["/bin/prog", "-x", "arg"], env={"PYTHONHASHSEED": "0"}, emulator=emulator)
    assert result.stdout.splitlines() == ["argv0=/.emulator/qemu", "args=/bin/prog -x arg", "hashseed=0", "/.emulator/qemu"]
    assert not os.path.lexists(root / ".emulator")


@needs_root
def test_a_failure_under_the_emulator_names_it(tmp_path: Path) -> None:
    root = shell_root(tmp_path)
    emulator = executable(tmp_path / "fake-qemu", b"#!/bin/sh\necho 'qemu: could not open' >&2\nexit 1\n")
    with pytest.raises(ChrootError) as error:
        chroot.run_in_root(root, ["/bin/prog", "arg"], emulator=emulator)
    assert f"/bin/prog arg failed in the image under {emulator} (exit 1):\nqemu: could not open" in str(error.value)
    assert not os.path.lexists(root / ".emulator")


@needs_root
def test_a_foreign_program_without_an_emulator_hints_at_the_architecture(tmp_path: Path) -> None:
    foreign = Layer()
    foreign.add_file("bin/prog", host_root.fake_elf("aarch64" if chroot.machine_architecture() != "arm64" else "x86_64"), 0o755)
    root = shell_root(tmp_path, foreign)
    with pytest.raises(ChrootError, match=r"Exec format error.*pass the image's --architecture"):
        chroot.run_in_root(root, ["/bin/prog"])


@needs_root
def test_a_real_qemu_runs_the_programs_of_its_architecture(tmp_path: Path) -> None:
    """The machine's own qemu (qemu-x86_64 on amd64) running the host's sh: the whole mechanism, for real."""
    emulator = host_root.machine_emulator()
    root = shell_root(tmp_path)
    result = chroot.run_in_root(root, ["/bin/sh", "-c", 'echo "$0 $1 $FOO"', "zero", "one"], env={"FOO": "foo"}, emulator=emulator)
    assert result.stdout == "zero one foo\n"
    assert not os.path.lexists(root / ".emulator")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
