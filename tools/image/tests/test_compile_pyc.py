"""Tests for tools/image/compile_pyc.py.

The error paths run as any user. The runs that chroot need root (the build runs as root): one uses a
fake python, a shell script run by the host's sh copied into the layers, to check what reaches the
output layer; the others run the host's real Python, copied with just the modules it needs, over a
small library, to check the pycs themselves, natively and under the machine's own qemu.
test_arm64_image.py runs a real arm64 Python.
"""

from __future__ import annotations

import io
import json
import marshal
import os
import sys
import types
from pathlib import Path

import pytest

from tools.image import chroot, compile_pyc
from tools.image.tests import host_root
from tools.tarball import GENERATED_MTIME, Layer, iter_members, read_layer

needs_root = host_root.needs_root

STDLIB = "usr/lib/python3.9"
CACHE = f"{STDLIB}/__pycache__"


# Source times in the fake stdlib: one as a .deb records it, one before 1980 (as a pre-1980 .deb would).
NEW_SOURCE_MTIME = 1_700_000_000
OLD_SOURCE_MTIME = 0


def write(layer: Layer, path: Path) -> Path:
    layer.write(path, "none")
    return path


def fake_python_layer(summary: dict[str, object]) -> Layer:
    """A stdlib and a stand-in python: it checks how it was called, then writes pycs and other files."""
    script = f"""#!/bin/sh
[ "$1 $2 $3" = "-S -B -c" ] || {{ echo "unexpected arguments: $*" >&2; exit 3; }}
[ "$5" = /{STDLIB} ] || {{ echo "unexpected stdlib: $5" >&2; exit 3; }}
[ "$PYTHONHASHSEED" = 0 ] || {{ echo "PYTHONHASHSEED is not 0" >&2; exit 4; }}
echo new > /{CACHE}/new.cpython-39.pyc
echo changed > /{CACHE}/changed.cpython-39.pyc
echo not-a-pyc > /{CACHE}/notes.txt
echo pkg > /{STDLIB}/pkg/__pycache__/__init__.cpython-39.pyc
echo elsewhere > /usr/lib/python3/dist-packages/__pycache__/other.cpython-39.pyc
echo stray > /{STDLIB}/stray.pyc
echo '{json.dumps(summary)}'
"""
    layer = Layer()
    layer.add_file("usr/bin/python3.9", script.encode(), 0o755)
    layer.add_file(f"{STDLIB}/os.py", b"# os\n")
    layer.add_file(f"{STDLIB}/new.py", b"# new\n", mtime=NEW_SOURCE_MTIME)
    layer.add_file(f"{STDLIB}/changed.py", b"# changed\n", mtime=OLD_SOURCE_MTIME)
    layer.add_file(f"{CACHE}/unchanged.cpython-39.pyc", b"unchanged\n")
    layer.add_file(f"{CACHE}/changed.cpython-39.pyc", b"before\n")
    layer.add_dir(f"{STDLIB}/pkg/__pycache__")
    layer.add_dir("usr/lib/python3/dist-packages/__pycache__")
    return layer


def fake_layers(tmp_path: Path, summary: dict[str, object]) -> list[str]:
    shell, _ = host_root.shell_layer()
    return [str(write(shell, tmp_path / "sh.tar")), str(write(fake_python_layer(summary), tmp_path / "python.tar"))]


def run(layers: list[str], out: Path, python: str = "usr/bin/python3.9", stdlib: str = STDLIB, extra: tuple[str, ...] = ()) -> int:
    return compile_pyc.main(["--layer", *layers, "--python", python, "--stdlib", stdlib, "--output", str(out), *extra])


def test_no_python_in_the_layers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = Layer()
    layer.add_file(f"{STDLIB}/os.py", b"")
    out = tmp_path / "out.tar.gz"
    assert run([str(write(layer, tmp_path / "l.tar"))], out) == 1
    assert "no usr/bin/python3.9 in the image's layers" in capsys.readouterr().err
    assert not out.exists()


def test_no_stdlib_in_the_layers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = Layer()
    layer.add_file("usr/bin/python3.9", b"#!/bin/sh\n", 0o755)
    out = tmp_path / "out.tar.gz"
    assert run([str(write(layer, tmp_path / "l.tar"))], out, stdlib="/usr/lib/python3.9/") == 1
    assert "no usr/lib/python3.9 directory in the image's layers" in capsys.readouterr().err
    assert not out.exists()


def test_not_root_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    layer = fake_python_layer({"compiled": 0, "failures": []})
    out = tmp_path / "out.tar.gz"
    assert run([str(write(layer, tmp_path / "l.tar"))], out) == 1
    assert "compile_pyc must run as root" in capsys.readouterr().err
    assert not out.exists()


def test_foreign_image_without_qemu_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(chroot, "EMULATOR_DIRS", ())
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(chroot.platform, "machine", lambda: "aarch64")
    layer = fake_python_layer({"compiled": 0, "failures": []})
    out = tmp_path / "out.tar.gz"
    assert run([str(write(layer, tmp_path / "l.tar"))], out, extra=("--architecture", "amd64")) == 1
    error = capsys.readouterr().err
    assert error.startswith("compile_pyc: error: the image is amd64 but this machine is aarch64")
    assert "qemu-x86_64" in error and "install Debian's qemu-user package" in error
    assert not out.exists()


def test_non_static_emulator_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    emulator = tmp_path / "qemu-aarch64"
    emulator.write_bytes(host_root.fake_elf("x86_64", "/lib64/ld-linux-x86-64.so.2"))
    emulator.chmod(0o755)
    layer = fake_python_layer({"compiled": 0, "failures": []})
    out = tmp_path / "out.tar.gz"
    assert run([str(write(layer, tmp_path / "l.tar"))], out, extra=("--architecture", "arm64", "--emulator", str(emulator))) == 1
    assert f"compile_pyc: error: emulator {emulator} is dynamically linked" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("path", "is_test"),
    [
        ("/usr/lib/python3.9/lib2to3/tests/data/bom.py", True),
        ("/usr/lib/python3.9/idlelib/idle_test/test_x.py", True),
        ("/usr/lib/python3.9/test/badsyntax_3131.py", True),
        ("/usr/lib/python3.9/test_support/x.py", True),
        ("/usr/lib/python3.9/test_thing.py", False),
        ("/usr/lib/python3.9/contest/x.py", False),
        ("/usr/lib/python3.9/email/x.py", False),
    ],
)
def test_is_test_path(path: str, is_test: bool) -> None:
    assert compile_pyc.is_test_path(path) is is_test


@needs_root
def test_output_holds_only_new_and_changed_pycs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.tar.gz"
    assert run(fake_layers(tmp_path, {"compiled": 3, "failures": []}), out) == 0
    entries = read_layer(out).entries
    files = sorted(path for path, entry in entries.items() if entry.type != b"5")
    assert files == [f"{CACHE}/changed.cpython-39.pyc", f"{CACHE}/new.cpython-39.pyc", f"{STDLIB}/pkg/__pycache__/__init__.cpython-39.pyc"]
    assert entries[f"{CACHE}/new.cpython-39.pyc"].data == b"new\n"
    assert all(entries[path].mode == 0o644 for path in files)
    assert entries[CACHE].mode == 0o755 and entries[f"{STDLIB}/pkg/__pycache__"].mode == 0o755
    assert "compiled 3 files; layer holds 3 .pyc files" in capsys.readouterr().out


@needs_root
def test_pycs_are_as_new_as_their_source_and_never_before_1980(tmp_path: Path) -> None:
    out = tmp_path / "out.tar.gz"
    assert run(fake_layers(tmp_path, {"compiled": 3, "failures": []}), out) == 0
    mtimes = {path: entry.mtime for path, entry in read_layer(out).entries.items() if "__pycache__" in path}
    assert mtimes == {
        f"{CACHE}/new.cpython-39.pyc": NEW_SOURCE_MTIME,
        f"{CACHE}/changed.cpython-39.pyc": GENERATED_MTIME,  # its source is older than 1980
        f"{STDLIB}/pkg/__pycache__/__init__.cpython-39.pyc": GENERATED_MTIME,  # no source
        CACHE: GENERATED_MTIME,
        f"{STDLIB}/pkg/__pycache__": GENERATED_MTIME,
    }


@pytest.mark.parametrize(
    ("pyc", "source"),
    [
        ("usr/lib/python3.9/__pycache__/os.cpython-39.pyc", "usr/lib/python3.9/os.py"),
        ("usr/lib/python3.9/email/__pycache__/utils.cpython-39.opt-1.pyc", "usr/lib/python3.9/email/utils.py"),
        ("usr/lib/python3.9/pkg/__pycache__/__init__.cpython-311.pyc", "usr/lib/python3.9/pkg/__init__.py"),
    ],
)
def test_source_of(pyc: str, source: str) -> None:
    assert compile_pyc.source_of(pyc) == source


@needs_root
def test_failures_in_test_directories_are_tolerated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failures = [[f"/{STDLIB}/lib2to3/tests/data/py2_test_grammar.py", "SyntaxError: invalid syntax"]]
    assert run(fake_layers(tmp_path, {"compiled": 3, "failures": failures}), tmp_path / "out.tar") == 0
    assert "not compiled (test data): /usr/lib/python3.9/lib2to3/tests/data/py2_test_grammar.py" in capsys.readouterr().err


@needs_root
def test_other_failures_fail_the_tool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failures = [[f"/{STDLIB}/email/broken.py", "SyntaxError: invalid syntax"]]
    out = tmp_path / "out.tar"
    assert run(fake_layers(tmp_path, {"compiled": 3, "failures": failures}), out) == 1
    assert "/usr/lib/python3.9/email/broken.py: SyntaxError: invalid syntax" in capsys.readouterr().err
    assert not out.exists()


def pyc_code(data: bytes) -> types.CodeType:
    code = marshal.loads(data[16:])
    assert isinstance(code, types.CodeType)
    return code


def real_python_layers(tmp_path: Path) -> tuple[list[str], str]:
    python_layer, python = host_root.python_layer(compile_pyc.DRIVER, compile_pyc.PYTHON_ENV)
    library = Layer()
    library.add_file("opt/lib/app.py", b"KNOWN = {'a', 'b', 'c', 'd', 'e'}\ndef f(x):\n    return x in KNOWN or x in {'f', 'g'}\n")
    library.add_file("opt/lib/pkg/__init__.py", b"")
    library.add_file("opt/lib/pkg/tests/data/bad.py", b"print 'python 2'\n")
    library.add_file("opt/lib/notes.txt", b"not python")
    return [str(write(python_layer, tmp_path / "python.tar")), str(write(library, tmp_path / "lib.tar"))], python


@needs_root
def test_real_python_compiles_reproducibly(tmp_path: Path) -> None:
    layers, python = real_python_layers(tmp_path)
    first, second = tmp_path / "1.tar.gz", tmp_path / "2.tar.gz"
    assert run(layers, first, python=python, stdlib="opt/lib") == 0
    assert run(layers, second, python=python, stdlib="opt/lib") == 0
    assert first.read_bytes() == second.read_bytes()

    tag = sys.implementation.cache_tag
    members = {info.name: data for info, data in iter_members(io.BytesIO(first.read_bytes())) if info.isreg()}
    assert sorted(members) == [f"opt/lib/__pycache__/app.{tag}.pyc", f"opt/lib/pkg/__pycache__/__init__.{tag}.pyc"]
    pyc = members[f"opt/lib/__pycache__/app.{tag}.pyc"]
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, unchecked
    code = pyc_code(pyc)
    assert code.co_filename == "/opt/lib/app.py"


@needs_root
def test_real_python_under_qemu_writes_the_same_pycs(tmp_path: Path) -> None:
    """The machine's own qemu (qemu-x86_64 on amd64) running the host's Python: the pycs are the native ones."""
    emulator = host_root.machine_emulator()
    layers, python = real_python_layers(tmp_path)
    native, emulated = tmp_path / "native.tar.gz", tmp_path / "emulated.tar.gz"
    assert run(layers, native, python=python, stdlib="opt/lib") == 0
    assert run(layers, emulated, python=python, stdlib="opt/lib", extra=("--emulator", str(emulator))) == 0
    assert emulated.read_bytes() == native.read_bytes()


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
