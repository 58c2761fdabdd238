"""Tests for tools/python/requirements_lock_writer.py: pip's resolver for real, offline, over a directory of synthetic wheels and sdists."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from tools.python import requirements_lock_writer as lock
from tools.python.requirements_lock_reader import check_fresh, parse_lock
from tools.python.tests.wheelfactory import make_wheel

X86, ARM = "manylinux_2_17_x86_64", "manylinux_2_17_aarch64"
# A PEP 517 backend inside the sdist (requires = [], so pip's build isolation needs no index): it writes a pure
# wheel, or, for a "native" project, first runs the C compiler the way setuptools would ($CC).
BACKEND = '''
import base64, hashlib, os, subprocess, zipfile
NAME, VERSION, NATIVE = {name!r}, {version!r}, {native!r}
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if NATIVE:
        subprocess.run([os.environ.get("CC", "cc"), "-c", "speedups.c"], check=True)
    dist = NAME + "-" + VERSION + ".dist-info"
    files = {{NAME + "/__init__.py": b"VALUE = 1\\n", dist + "/METADATA": ("Metadata-Version: 2.1\\nName: " + NAME + "\\nVersion: " + VERSION + "\\n").encode(),
             dist + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}}
    record = [p + ",sha256=" + base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode() + "," + str(len(d)) for p, d in files.items()]
    files[dist + "/RECORD"] = ("\\n".join(record + [dist + "/RECORD,,"]) + "\\n").encode()
    name = NAME + "-" + VERSION + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return name
'''


def make_sdist(directory: Path, name: str, version: str, native: bool = False) -> None:
    files = {
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        "backend.py": BACKEND.format(name=name, version=version, native=native),
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    }
    with tarfile.open(directory / f"{name}-{version}.tar.gz", "w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-{version}/{path}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A find-links directory as the only index: pip's own configuration and the machine's are not read."""
    links = tmp_path / "links"
    links.mkdir()
    for variable in [v for v in os.environ if v.startswith("PIP_")]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "pip-cache"))  # the test's own: ~/.cache may be read-only
    # app needs dep with its extra; dep's extra pulls a native package; arm64 alone needs armonly.
    make_wheel(links, "app-1.0-py3-none-any.whl", {"app/__init__.py": b""},
               requires=("dep[fast]<2", 'armonly; platform_machine == "aarch64"', 'oldpy; python_version < "3.12"'))
    for version in ("1.0", "1.5", "2.0"):
        make_wheel(links, f"dep-{version}-py3-none-any.whl", {"dep/__init__.py": b""}, requires=('speedup; extra == "fast"',),
                   extras=("fast",))
    for platform in (X86, ARM):
        make_wheel(links, f"speedup-1.0-cp313-cp313-{platform}.whl", {"speedup/__init__.py": platform.encode()})
    make_wheel(links, "speedup-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", {"speedup/__init__.py": b"old"})
    make_wheel(links, "armonly-1.0-py3-none-any.whl", {"armonly/__init__.py": b""})
    make_wheel(links, "oldpy-1.0-py3-none-any.whl", {"oldpy/__init__.py": b""})
    return links


def run_lock(workspace: Path, requirements: str, architectures: tuple[str, ...] = ("amd64", "arm64")) -> tuple[int, Path]:
    (workspace / "requirements.in").write_text(requirements)
    argv = ["--requirements", str(workspace / "requirements.in"), "--output", str(workspace / "requirements.lock"),
            "--python-version", "3.13", "--glibc", "2.41", "--update-command", "tools/bazel run //app:requirements.update"]
    for architecture in architectures:
        argv += ["--architecture", architecture]
    return lock.main(argv), workspace / "requirements.lock"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_extras_markers_and_specifiers_give_the_whole_closure_per_architecture(index: Path, tmp_path: Path) -> None:
    status, output = run_lock(tmp_path, "app\n")
    assert status == 0
    text = output.read_text()
    requirements = {(r.project, r.version): r for r in parse_lock(text)}
    # dep<2 from app, its extra [fast] (speedup), armonly by its marker on arm64 alone, oldpy (Python < 3.12) never.
    assert sorted(requirements) == [("app", "1.0"), ("armonly", "1.0"), ("dep", "1.5"), ("speedup", "1.0")]
    assert requirements["armonly", "1.0"].machines == ("aarch64",)
    assert sorted(requirements["speedup", "1.0"].hashes) == sorted(
        sha256(index / f"speedup-1.0-cp313-cp313-{platform}.whl") for platform in (X86, ARM))
    assert requirements["dep", "1.5"].hashes == (sha256(index / "dep-1.5-py3-none-any.whl"),)
    assert check_fresh(text, output) == tmp_path / "requirements.in"
    assert "Update: tools/bazel run //app:requirements.update" in text.splitlines()[0]
    # Same inputs, same lock.
    first = output.read_bytes()
    assert run_lock(tmp_path, "app\n")[0] == 0 and output.read_bytes() == first


def test_every_architectures_problem_is_reported_and_nothing_is_written(index: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    status, output = run_lock(tmp_path, "app\ndep==2.0\n")
    assert status == 1 and not output.exists()
    error = capsys.readouterr().err
    assert "2 of 2 architectures failed; the lock is unchanged" in error
    assert "linux/amd64: pip's resolver found no solution" in error and "linux/arm64: pip's resolver" in error
    assert "dep" in error and "conflict" in error.lower()


def test_an_unsatisfiable_specifier_is_an_error_for_each_architecture(index: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    status, output = run_lock(tmp_path, "dep>=5\n")
    assert status == 1 and not output.exists()
    error = capsys.readouterr().err
    for architecture in ("amd64", "arm64"):
        assert (f"linux/{architecture}: 1 requirement(s) with no wheel for the images' platform:\n    - dep>=5: no "
                "version of it fits, neither as a wheel for the images' platform nor as a source distribution") in error


def test_every_missing_wheel_of_an_architecture_is_listed_in_one_run(index: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # ghost and phantom exist nowhere; nativepkg only as an sdist that needs a compiler; x86only has no arm64
    # wheel, and is needed through a package that does resolve (tool), so pip meets it only after the others.
    make_sdist(index, "nativepkg", "1.0", native=True)
    make_wheel(index, "tool-1.0-py3-none-any.whl", {"tool/__init__.py": b""}, requires=("x86only>1.1,<3",))
    make_wheel(index, f"x86only-2.0-cp313-cp313-{X86}.whl", {"x86only/__init__.py": b""})
    status, output = run_lock(tmp_path, "app\nghost>=1.2\nnativepkg\nphantom==3.0\ntool\n")
    assert status == 1 and not output.exists() and not (tmp_path / "wheelhouse").exists()
    error = capsys.readouterr().err
    assert "2 of 2 architectures failed; the lock is unchanged" in error
    amd64, arm64 = error.split("linux/amd64: ", 1)[1].split("linux/arm64: ", 1)
    assert amd64.startswith("3 requirement(s) with no wheel for the images' platform:\n")
    assert arm64.startswith("4 requirement(s) with no wheel for the images' platform:\n")
    for section in (amd64, arm64):
        for problem in ("- ghost>=1.2: no version of it fits", "- phantom==3.0: no version of it fits",
                        "- nativepkg: publishes no wheel for the images' platform, only a source distribution"):
            assert problem in section, f"{problem!r} missing from {section}"
        # The fix once, after the list.
        assert section.count("PIP_FIND_LINKS=DIR") == 1 and section.index("PIP_FIND_LINKS=DIR") > section.index("- phantom")
    assert "- x86only<3,>1.1: no version of it fits" in arm64 and "x86only" not in amd64


def test_bad_lines_are_listed_together(index: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _ = run_lock(tmp_path, "app\n-e .\nnot a requirement!\nx @ https://example.invalid/x.whl\n")
    assert status == 1
    error = capsys.readouterr().err
    assert "3 problem(s) in requirements.in" in error
    assert "requirements.in:2: -e is not supported" in error and "requirements.in:3:" in error and "requirements.in:4: x names a URL" in error


def test_a_pure_sdist_is_built_deterministically_into_the_wheelhouse(index: Path, tmp_path: Path) -> None:
    make_sdist(index, "purepkg", "0.6.2")
    status, output = run_lock(tmp_path, "purepkg==0.6.2\n", ("amd64",))
    assert status == 0
    built = tmp_path / "wheelhouse" / "purepkg-0.6.2-py3-none-any.whl"
    requirement, = parse_lock(output.read_text())
    assert requirement.hashes == (sha256(built),)
    assert "(from wheelhouse/)" in output.read_text()
    # Built again from scratch: the same bytes.
    first = built.read_bytes()
    built.unlink()
    assert run_lock(tmp_path, "purepkg==0.6.2\n", ("amd64",))[0] == 0
    assert built.read_bytes() == first


def test_an_sdist_that_needs_a_compiler_says_so(index: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_sdist(index, "nativepkg", "1.0", native=True)
    status, output = run_lock(tmp_path, "nativepkg\n", ("amd64",))
    assert status == 1 and not output.exists() and not (tmp_path / "wheelhouse").exists()
    error = capsys.readouterr().err
    assert ("nativepkg: publishes no wheel for the images' platform, only a source distribution, and building it "
            "failed without a compiler") in error
    assert "PIP_FIND_LINKS=DIR" in error


def test_a_local_wheel_is_copied_into_the_wheelhouse(index: Path, tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    make_wheel(own, "mine-2.0-py3-none-any.whl", {"mine/__init__.py": b""})
    (tmp_path / "requirements.in").write_text("mine\n")
    argv = ["--requirements", str(tmp_path / "requirements.in"), "--output", str(tmp_path / "requirements.lock"),
            "--python-version", "3.13", "--glibc", "2.41", "--architecture", "arm64", "--find-links", str(own)]
    assert lock.main(argv) == 0
    assert sha256(tmp_path / "wheelhouse" / "mine-2.0-py3-none-any.whl") == sha256(own / "mine-2.0-py3-none-any.whl")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
