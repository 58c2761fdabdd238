"""Tests for tools/python/install_wheels.py on synthetic wheels, with the image's facts given (no chroot).

test_image_install.py runs the tool for real, with //python:3.13's own interpreter.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tools.python.image_python import Facts
from tools.python.install_wheels import InstallError, build_layer, check_requirements, choose, install_wheel
from tools.python.tests.wheelfactory import elf, make_wheel, record_hash
from tools.tarball import Layer

SITE = "usr/lib/python3/dist-packages"
FACTS = Facts("cpython", (3, 13, 5), "cpython-313", "x86_64", "glibc 2.41", False, ".cpython-313-x86_64-linux-gnu.so", ("/" + SITE,))
SO = "demo/_native.cpython-313-x86_64-linux-gnu.so"


def native_wheel(tmp_path: Path, **kwargs: object) -> Path:
    files = {"demo/__init__.py": b"from demo._native import x\n", SO: elf(62)}
    return make_wheel(tmp_path, "demo-1.0-cp313-cp313-manylinux_2_17_x86_64.whl", files, modes={SO: 0o755}, **kwargs)  # type: ignore[arg-type]


def test_installs_into_site_with_installer_and_record(tmp_path: Path) -> None:
    installed = install_wheel(native_wheel(tmp_path), FACTS, "usr/bin/python3.13")
    assert installed.files[f"{SITE}/demo/__init__.py"] == b"from demo._native import x\n"
    assert installed.modes[f"{SITE}/{SO}"] == 0o755
    assert installed.modes[f"{SITE}/demo/__init__.py"] == 0o644
    assert installed.files[f"{SITE}/demo-1.0.dist-info/INSTALLER"] == b"distroless-python\n"
    pycs = Layer()
    pycs.add_file(f"{SITE}/demo/__pycache__/__init__.cpython-313.pyc", b"pyc")
    layer = build_layer([installed], pycs)
    record = layer.entries[f"{SITE}/demo-1.0.dist-info/RECORD"].data.decode()
    rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(record))}
    assert rows["demo/__init__.py"] == [record_hash(b"from demo._native import x\n"), "27"]
    assert rows["demo/__pycache__/__init__.cpython-313.pyc"] == [record_hash(b"pyc"), "3"]
    assert rows["demo-1.0.dist-info/INSTALLER"][0].startswith("sha256=")
    assert rows["demo-1.0.dist-info/RECORD"] == ["", ""]
    assert record.splitlines() == sorted(record.splitlines())


def test_data_scripts_and_entry_points(tmp_path: Path) -> None:
    files = {
        "demo/__init__.py": b"def main():\n    return 0\n",
        "demo-1.0.data/scripts/demo-tool": b"#!python\nprint('hi')\n",
        "demo-1.0.data/data/share/demo/x.txt": b"x",
        "demo-1.0.data/purelib/extra.py": b"",
    }
    wheel = make_wheel(tmp_path, "demo-1.0-py3-none-any.whl", files, entry_points="[console_scripts]\ndemo = demo:main\n")
    installed = install_wheel(wheel, FACTS, "usr/bin/python3.13")
    assert installed.files["usr/bin/demo-tool"] == b"#!/usr/bin/python3.13\nprint('hi')\n"
    assert installed.modes["usr/bin/demo-tool"] == 0o755
    assert installed.files["usr/share/demo/x.txt"] == b"x"
    assert f"{SITE}/extra.py" in installed.files
    script = installed.files["usr/bin/demo"].decode()
    assert script.startswith("#!/usr/bin/python3.13\n") and "from demo import main" in script and "sys.exit(main())" in script


def test_a_file_that_does_not_match_its_record_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InstallError, match=r"demo/__init__\.py does not match the sha256 and size in its RECORD"):
        install_wheel(native_wheel(tmp_path, corrupt="demo/__init__.py"), FACTS, "usr/bin/python3")


def test_native_code_for_another_machine_is_refused(tmp_path: Path) -> None:
    files = {SO: elf(183)}
    wheel = make_wheel(tmp_path, "demo-1.0-cp313-cp313-manylinux_2_17_x86_64.whl", files)
    with pytest.raises(InstallError, match=r"is native code for aarch64, but the image runs x86_64"):
        install_wheel(wheel, FACTS, "usr/bin/python3")


def test_an_extension_for_another_abi_is_refused(tmp_path: Path) -> None:
    files = {"demo/_native.cpython-312-x86_64-linux-gnu.so": elf(62)}
    wheel = make_wheel(tmp_path, "demo-1.0-cp313-cp313-manylinux_2_17_x86_64.whl", files)
    with pytest.raises(InstallError, match=r"extension module for another CPython ABI; the image's interpreter loads \*\.cpython-313-x86_64-linux-gnu\.so"):
        install_wheel(wheel, FACTS, "usr/bin/python3")


def test_choose_fails_for_a_wheel_of_the_wrong_abi_or_architecture(tmp_path: Path) -> None:
    for name in ("demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "demo-1.0-cp313-cp313-manylinux_2_17_aarch64.whl",
                 "demo-1.0-cp313-cp313-manylinux_2_42_x86_64.whl"):
        with pytest.raises(InstallError, match=r"demo: no wheel fits the image's Python, cpython 3\.13\.5 \(cpython-313\) on linux x86_64, glibc 2\.41 \(given: " + name.replace(".", r"\.")):
            choose([tmp_path / name], FACTS)


def test_choose_takes_the_best_fitting_wheel_per_project(tmp_path: Path) -> None:
    wheels = [tmp_path / "demo-1.0-cp313-cp313-manylinux_2_17_x86_64.whl", tmp_path / "demo-1.0-cp313-cp313-manylinux_2_28_x86_64.whl",
              tmp_path / "other-2-py3-none-any.whl"]
    chosen, notes = choose(wheels, FACTS)
    assert [path.name for path in chosen] == ["demo-1.0-cp313-cp313-manylinux_2_28_x86_64.whl", "other-2-py3-none-any.whl"]
    assert notes == ["demo: demo-1.0-cp313-cp313-manylinux_2_17_x86_64.whl not used; demo-1.0-cp313-cp313-manylinux_2_28_x86_64.whl fits better"]


def test_unlisted_dependency_is_named(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "flaskish-1.0-py3-none-any.whl", {"flaskish.py": b""},
                       requires=("Werkzeug>=3", "click; extra == 'cli'"))
    installed = install_wheel(wheel, FACTS, "usr/bin/python3")
    with pytest.raises(InstallError, match=r"requires Werkzeug>=3, which the lock does not list: add werkzeug"):
        check_requirements([installed])


def test_two_wheels_writing_one_file_conflict(tmp_path: Path) -> None:
    one = install_wheel(make_wheel(tmp_path, "one-1-py3-none-any.whl", {"shared.py": b"1"}), FACTS, "usr/bin/python3")
    two = install_wheel(make_wheel(tmp_path, "two-1-py3-none-any.whl", {"shared.py": b"2"}), FACTS, "usr/bin/python3")
    with pytest.raises(InstallError, match=r"both install /usr/lib/python3/dist-packages/shared\.py"):
        build_layer([one, two], Layer())


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
