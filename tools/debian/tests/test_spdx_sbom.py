"""Tests for tools/debian/spdx_sbom.py, on small .debs built here with dpkg-deb, validated by pyspdxtools."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.debian import spdx_sbom
from tools.debian.spdx_sbom import NOASSERTION, LicenseRefs, spdx_license

DEP5 = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: {name}

Files: *
Copyright: 2001-2026 Sample Authors
License: {license}

Files: vendored/*
Copyright: 1999 Someone Else
License: MIT
"""
NOT_MACHINE_READABLE = "This package was debianized by someone.\n\nIt is licensed under the GPL, version 2.\n"


def make_deb(tmp_path: Path, name: str, copyright: str | None = None, doc_link: str | None = None,
             architecture: str = "amd64", version: str = "1:1.2+dfsg-3") -> Path:
    root = tmp_path / f"{name}-tree"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(f"Package: {name}\nVersion: {version}\nArchitecture: {architecture}\n"
                                         f"Maintainer: Tests <tests@example.org>\nDescription: {name}\n test package\n")
    docs = root / "usr/share/doc"
    docs.mkdir(parents=True)
    if copyright is not None:
        (docs / name).mkdir()
        (docs / name / "copyright").write_text(copyright)
    if doc_link is not None:
        (docs / name).symlink_to(doc_link)
    for directory in (root, *(path for path in root.rglob("*") if path.is_dir() and not path.is_symlink())):
        directory.chmod(0o755)
    out = tmp_path / f"{name}.deb"
    subprocess.run(["dpkg-deb", "-Zxz", "--root-owner-group", "--build", str(root), str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return out


def build(tmp_path: Path, *debs: Path) -> dict:
    out = tmp_path / "sbom.spdx.json"
    assert spdx_sbom.main(["--name", "distroless/python:test", "--architecture", "amd64", "--distribution", "trixie",
                           "--image-license", "GPL-3.0-or-later", "--output", str(out), *map(str, debs)]) == 0
    return json.loads(out.read_text())


def packages(document: dict) -> dict[str, dict]:
    return {package["name"]: package for package in document["packages"] if package["SPDXID"] != "SPDXRef-Image"}


def pyspdxtools(path: Path) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run([sys.executable, "-m", "spdx_tools.spdx.clitools.pyspdxtools", "-i", str(path)],
                          capture_output=True, text=True, env=environment, timeout=300)


@pytest.mark.parametrize(("synopsis", "expected"), [
    ("GPL-2+", "GPL-2.0-or-later"),
    ("GPL-2", "GPL-2.0-only"),
    ("LGPL-2.1+", "LGPL-2.1-or-later"),
    ("Expat", "MIT"),
    ("BSD-3-clause", "BSD-3-Clause"),
    ("PSF-2", "PSF-2.0"),
    ("GPL-2+ or Artistic", "GPL-2.0-or-later OR Artistic-1.0"),
    ("GPL-3+ with GCC-exception-3.1", "LicenseRef-GPL-3-with-GCC-exception-3.1"),
    ("GPL-3+ with GCC-exception-3.1 exception", "GPL-3.0-or-later WITH GCC-exception-3.1"),
    ("GPL-2+ or Artistic, and BSD-3-clause", "(GPL-2.0-or-later OR Artistic-1.0) AND BSD-3-Clause"),
    ("public-domain", "LicenseRef-public-domain"),
])
def test_debian_licence_names_become_spdx_expressions(synopsis: str, expected: str) -> None:
    assert spdx_license(synopsis, "sample", LicenseRefs()) == expected


def test_packages_keep_version_architecture_checksum_purl_and_gain_their_licence(tmp_path: Path) -> None:
    deb = make_deb(tmp_path, "libsample1", DEP5.format(name="sample", license="GPL-2+ or Artistic"))
    package = packages(build(tmp_path, deb))["libsample1"]
    assert package["versionInfo"] == "1:1.2+dfsg-3"
    assert package["checksums"] == [{"algorithm": "SHA256", "checksumValue": hashlib.sha256(deb.read_bytes()).hexdigest()}]
    assert package["externalRefs"][0]["referenceLocator"] == "pkg:deb/debian/libsample1@1%3A1.2%2Bdfsg-3?arch=amd64&distro=trixie"
    assert package["licenseDeclared"] == "GPL-2.0-or-later OR Artistic-1.0"
    assert package["copyrightText"] == "2001-2026 Sample Authors"


def test_a_copyright_file_that_is_not_machine_readable_gives_noassertion(tmp_path: Path) -> None:
    package = packages(build(tmp_path, make_deb(tmp_path, "old", NOT_MACHINE_READABLE)))["old"]
    assert package["licenseDeclared"] == NOASSERTION
    assert package["copyrightText"] == NOASSERTION


def test_architecture_independent_packages_say_so_in_their_purl(tmp_path: Path) -> None:
    deb = make_deb(tmp_path, "tzdata", DEP5.format(name="tz", license="public-domain"), architecture="all")
    package = packages(build(tmp_path, deb))["tzdata"]
    assert package["externalRefs"][0]["referenceLocator"].endswith("?arch=all&distro=trixie")


def test_a_doc_directory_linked_to_another_package_takes_that_packages_copyright(tmp_path: Path) -> None:
    owner = make_deb(tmp_path, "libsample-minimal", DEP5.format(name="sample", license="PSF-2"))
    linked = make_deb(tmp_path, "libsample-stdlib", doc_link="libsample-minimal")
    described = packages(build(tmp_path, owner, linked))
    assert described["libsample-stdlib"]["licenseDeclared"] == "PSF-2.0"


def test_unknown_licences_become_declared_licence_refs_and_the_document_validates(tmp_path: Path) -> None:
    debs = [make_deb(tmp_path, "one", DEP5.format(name="one", license="public-domain")),
            make_deb(tmp_path, "two", DEP5.format(name="two", license="public-domain and GPL-2+")),
            make_deb(tmp_path, "three", NOT_MACHINE_READABLE)]
    document = build(tmp_path, *debs)
    assert packages(document)["two"]["licenseDeclared"] == "LicenseRef-public-domain AND GPL-2.0-or-later"
    [extracted] = document["hasExtractedLicensingInfos"]
    assert extracted["licenseId"] == "LicenseRef-public-domain"
    assert "of: one, two." in extracted["extractedText"]
    result = pyspdxtools(tmp_path / "sbom.spdx.json")
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_undeclared_licence_ref_fails_validation(tmp_path: Path) -> None:
    """pyspdxtools is strict enough to catch what the tool must get right."""
    document = build(tmp_path, make_deb(tmp_path, "one", DEP5.format(name="one", license="public-domain")))
    del document["hasExtractedLicensingInfos"]
    broken = tmp_path / "broken.spdx.json"
    broken.write_text(json.dumps(document))
    result = pyspdxtools(broken)
    assert result.returncode != 0
    assert "LicenseRef-public-domain" in result.stdout + result.stderr


def test_the_same_debs_give_the_same_bytes_in_any_order(tmp_path: Path) -> None:
    debs = [make_deb(tmp_path, name, DEP5.format(name=name, license="MIT")) for name in ("b", "a", "c")]
    first = build(tmp_path, *debs)
    second = build(tmp_path, *reversed(debs))
    assert first == second
    assert [package["name"] for package in first["packages"]] == ["distroless/python:test", "a", "b", "c"]


def test_a_package_given_twice_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deb = make_deb(tmp_path, "one", DEP5.format(name="one", license="MIT"))
    assert spdx_sbom.main(["--name", "n", "--architecture", "amd64", "--distribution", "trixie", "--image-license",
                           "MIT", "--output", str(tmp_path / "out.json"), str(deb), str(deb)]) == 1
    assert "one given more than once" in capsys.readouterr().err


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
