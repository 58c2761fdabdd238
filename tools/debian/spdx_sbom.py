"""Writes an image's SPDX 2.3 JSON SBOM from the .debs it was built from.

Each package is described by what its .deb says (name, version, architecture from its control file; the
sha256 of the .deb itself) and gets a purl and, where its /usr/share/doc/<package>/copyright is machine-readable
(DEP-5), the licence of its `Files: *` paragraph, as an SPDX expression. Nothing depends on the time or the
machine, so the same debs give the same document.

    python3 -m tools.debian.spdx_sbom --name NAME --architecture ARCH --distribution DIST
        --image-license SPDX-EXPR --output OUT DEB [DEB...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from debian.copyright import Copyright, Error as CopyrightError
from debian.deb822 import Deb822

from tools import cli, tarball
from tools.debian.deb_to_layer import DebError, control_files, read_deb, read_tar

NOASSERTION = "NOASSERTION"
DOC_DIR = "usr/share/doc"

# Debian's short licence names (copyright-format 1.0, "License specification") and common variants,
# lowercased, -> SPDX licence ids. A name not here becomes a LicenseRef-.
DEBIAN_LICENSES: dict[str, str] = {
    "apache-2.0": "Apache-2.0",
    "artistic": "Artistic-1.0",
    "artistic-1.0": "Artistic-1.0",
    "artistic-2.0": "Artistic-2.0",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause",
    "bsl-1.0": "BSL-1.0",
    "cc0-1.0": "CC0-1.0",
    "cc-by-3.0": "CC-BY-3.0",
    "cc-by-4.0": "CC-BY-4.0",
    "cc-by-sa-3.0": "CC-BY-SA-3.0",
    "cc-by-sa-4.0": "CC-BY-SA-4.0",
    "curl": "curl",
    "expat": "MIT",
    "mit": "MIT",
    "isc": "ISC",
    "mpl-1.1": "MPL-1.1",
    "mpl-2.0": "MPL-2.0",
    "openssl": "OpenSSL",
    "psf-2": "PSF-2.0",
    "psf-2.0": "PSF-2.0",
    "python-2.0": "Python-2.0",
    "python": "Python-2.0",
    "unicode-dfs-2016": "Unicode-DFS-2016",
    "zlib": "Zlib",
    "zpl-2.1": "ZPL-2.1",
    "0bsd": "0BSD",
    "unlicense": "Unlicense",
    "x11": "X11",
}
for _family, _versions in {"gpl": ("1", "2", "3"), "lgpl": ("2", "2.1", "3"), "agpl": ("3",), "gfdl": ("1.2", "1.3")}.items():
    for _version in _versions:
        _spdx = f"{_family.upper()}-{_version if '.' in _version else _version + '.0'}"
        DEBIAN_LICENSES[f"{_family}-{_version}"] = f"{_spdx}-only"
        DEBIAN_LICENSES[f"{_family}-{_version}+"] = f"{_spdx}-or-later"
        if "." not in _version:
            DEBIAN_LICENSES[f"{_family}-{_version}.0"] = f"{_spdx}-only"
            DEBIAN_LICENSES[f"{_family}-{_version}.0+"] = f"{_spdx}-or-later"

# "<licence> with <name> exception" -> the SPDX exception id.
DEBIAN_EXCEPTIONS: dict[str, str] = {
    "gcc-exception-3.1": "GCC-exception-3.1",
    "gcc-exception-2.0": "GCC-exception-2.0",
    "gcc runtime library": "GCC-exception-3.1",
    "openssl": "openvpn-openssl-exception",
    "autoconf": "Autoconf-exception-generic",
    "bison": "Bison-exception-2.2",
    "classpath": "Classpath-exception-2.0",
    "font": "Font-exception-2.0",
    "libtool": "Libtool-exception",
}


class SbomError(Exception):
    """An input that cannot be described; the message names the file and the problem."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    architecture: str
    sha256: str
    license: str  # an SPDX expression, or NOASSERTION
    copyright: str  # the Files: * paragraph's Copyright, or NOASSERTION


@dataclass
class LicenseRefs:
    """LicenseRef- ids in use, and the packages whose copyright files name each."""

    users: dict[str, tuple[str, set[str]]] = field(default_factory=dict)  # id -> (Debian name, packages)

    def add(self, debian_name: str, package: str) -> str:
        identifier = "LicenseRef-" + (re.sub(r"[^A-Za-z0-9.-]+", "-", debian_name).strip("-") or "unnamed")
        self.users.setdefault(identifier, (debian_name, set()))[1].add(package)
        return identifier


def spdx_license(synopsis: str, package: str, refs: LicenseRefs) -> str:
    """A DEP-5 licence synopsis ("GPL-2+ or Artistic, and BSD-3-clause") as an SPDX expression.

    In DEP-5 a comma binds loosest ("A or B, and C" is "(A OR B) AND C"); each part is "and"/"or" of names,
    each name optionally "with X exception".
    """
    parts = [part.strip() for part in synopsis.split(",") if part.strip()]
    expressions = []
    for part in parts:
        part = re.sub(r"^and\s+", "", part, flags=re.IGNORECASE)
        tokens = re.split(r"\s+(and|or)\s+", part, flags=re.IGNORECASE)
        words = []
        for index, token in enumerate(tokens):
            words.append(token.upper() if index % 2 else license_atom(token.strip(), package, refs))
        expression = " ".join(words)
        expressions.append(f"({expression})" if len(parts) > 1 and len(tokens) > 1 else expression)
    if not expressions:
        return NOASSERTION
    return " AND ".join(expressions)


def license_atom(name: str, package: str, refs: LicenseRefs) -> str:
    """One licence name, with its exception if it has one, as SPDX."""
    match = re.fullmatch(r"(.+?)\s+with\s+(.+?)\s+exception", name, flags=re.IGNORECASE)
    if match:
        base = DEBIAN_LICENSES.get(match.group(1).lower())
        exception = DEBIAN_EXCEPTIONS.get(match.group(2).lower())
        if base and exception:
            return f"{base} WITH {exception}"
        return refs.add(name, package)
    return DEBIAN_LICENSES.get(name.lower()) or refs.add(name, package)


def copyright_license(text: str, package: str, refs: LicenseRefs) -> tuple[str, str]:
    """(licence, copyright) of a copyright file's `Files: *` paragraph, or NOASSERTION where not machine-readable."""
    try:
        parsed = Copyright(text.splitlines(keepends=True), strict=False)
    except (CopyrightError, ValueError):
        return NOASSERTION, NOASSERTION
    for paragraph in parsed.all_files_paragraphs():
        if "*" in paragraph.files:
            license = paragraph.license
            synopsis = license.synopsis.strip() if license else ""
            copyright = (paragraph.copyright or "").strip()
            return (spdx_license(synopsis, package, refs) if synopsis else NOASSERTION,
                    copyright or NOASSERTION)
    return NOASSERTION, NOASSERTION


@dataclass(frozen=True)
class DebContents:
    """What one .deb says about itself, and what it ships under usr/share/doc."""

    name: str
    version: str
    architecture: str
    sha256: str
    doc_files: dict[str, bytes]  # usr/share/doc/... regular file path -> contents
    doc_links: dict[str, str]  # usr/share/doc/... symlink path -> target


def read_contents(path: Path) -> DebContents:
    deb = read_deb(path)
    control = Deb822(control_files(deb).get("control", b"").decode("utf-8", "replace"))
    missing = [key for key in ("Package", "Version", "Architecture") if not control.get(key)]
    if missing:
        raise SbomError(f"{path}: its control file has no {', '.join(missing)}")
    doc_files: dict[str, bytes] = {}
    doc_links: dict[str, str] = {}
    for info, data in read_tar(path, "data.tar", deb.data_tar):
        name = tarball.normalize_path(info.name)
        if not name.startswith(DOC_DIR + "/"):
            continue
        if info.isreg():
            doc_files[name] = data
        elif info.issym():
            doc_links[name] = info.linkname
    return DebContents(control["Package"], control["Version"], control["Architecture"],
                       hashlib.sha256(path.read_bytes()).hexdigest(), doc_files, doc_links)


def find_copyright(package: str, debs: Sequence[DebContents]) -> bytes | None:
    """/usr/share/doc/<package>/copyright as the image has it, following doc-directory symlinks across debs
    (Policy 12.5 allows the directory to link to that of a package of the same source)."""
    files = {path: data for deb in debs for path, data in deb.doc_files.items()}
    links = {path: target for deb in debs for path, target in deb.doc_links.items()}
    directory = f"{DOC_DIR}/{package}"
    for _ in range(10):
        if f"{directory}/copyright" in files:
            return files[f"{directory}/copyright"]
        for path in (f"{directory}/copyright", directory):
            if path in links:
                target = links[path]
                resolved = posixpath.normpath(target.lstrip("/") if target.startswith("/")
                                              else posixpath.join(posixpath.dirname(path), target))
                if path.endswith("/copyright"):
                    return files.get(resolved)
                directory = resolved
                break
        else:
            return None
    return None


def describe(debs: Sequence[DebContents], refs: LicenseRefs) -> list[Package]:
    packages = []
    for deb in sorted(debs, key=lambda deb: (deb.name, deb.architecture)):
        text = find_copyright(deb.name, debs)
        license, copyright = (copyright_license(text.decode("utf-8", "replace"), deb.name, refs)
                              if text is not None else (NOASSERTION, NOASSERTION))
        packages.append(Package(deb.name, deb.version, deb.architecture, deb.sha256, license, copyright))
    return packages


def purl(package: Package, distribution: str) -> str:
    version = package.version.replace("%", "%25").replace(":", "%3A").replace("+", "%2B")
    return f"pkg:deb/debian/{package.name}@{version}?arch={package.architecture}&distro={distribution}"


def spdx_id(name: str) -> str:
    return "SPDXRef-Package-" + re.sub(r"[^A-Za-z0-9.-]", "-", name)


def document(name: str, architecture: str, distribution: str, image_license: str,
             packages: Sequence[Package], refs: LicenseRefs) -> dict[str, object]:
    image = {
        "SPDXID": "SPDXRef-Image",
        "name": name,
        "versionInfo": architecture,
        "downloadLocation": NOASSERTION,
        "licenseConcluded": image_license,
        "licenseDeclared": image_license,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "CONTAINER",
    }
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": "SPDXRef-Image"}]
    spdx_packages: list[dict[str, object]] = [image]
    for package in packages:
        spdx_packages.append({
            "SPDXID": spdx_id(package.name),
            "name": package.name,
            "versionInfo": package.version,
            "supplier": "Organization: Debian",
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": False,
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": package.license,
            "copyrightText": package.copyright,
            "checksums": [{"algorithm": "SHA256", "checksumValue": package.sha256}],
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": purl(package, distribution)}],
            "primaryPackagePurpose": "LIBRARY",
        })
        relationships.append({"spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS",
                              "relatedSpdxElement": spdx_id(package.name)})
    # The namespace must be unique per document: derive it from the contents, not from time or randomness.
    fingerprint = hashlib.sha256(json.dumps([name, architecture, [p.sha256 for p in packages]]).encode()).hexdigest()
    result: dict[str, object] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{name} ({architecture})",
        "documentNamespace": f"urn:distroless-python:sbom:{architecture}:{fingerprint}",
        "creationInfo": {"created": "1970-01-01T00:00:00Z", "creators": ["Tool: distroless-python spdx_sbom"]},
        "packages": spdx_packages,
        "relationships": relationships,
    }
    if refs.users:
        result["hasExtractedLicensingInfos"] = [
            {
                "licenseId": identifier,
                "name": debian_name,
                "extractedText": (f"The licence that Debian's machine-readable copyright files call '{debian_name}'; "
                                  f"its text is in /usr/share/doc/<package>/copyright of: {', '.join(sorted(users))}."),
            }
            for identifier, (debian_name, users) in sorted(refs.users.items())
        ]
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the image's name, e.g. distroless/python:3.13-debug")
    parser.add_argument("--architecture", required=True, help="the image's architecture, e.g. amd64")
    parser.add_argument("--distribution", required=True, help="the Debian release, for purls, e.g. trixie")
    parser.add_argument("--image-license", required=True, help="the image's own licence, an SPDX expression")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("debs", nargs="+", type=Path, help="every .deb the image was built from")
    return parser.parse_args(argv)


@cli.tool("spdx_sbom", DebError, SbomError)
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    debs = [read_contents(path) for path in args.debs]
    names = [deb.name for deb in debs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SbomError(f"{', '.join(duplicates)} given more than once")
    refs = LicenseRefs()
    packages = describe(debs, refs)
    result = document(args.name, args.architecture, args.distribution, args.image_license, packages, refs)
    args.output.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
