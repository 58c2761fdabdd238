"""An SPDX 2.3 JSON SBOM of an image's Debian packages, made from the lock alone (so it is reproducible)."""

load("@bazel_skylib//rules:write_file.bzl", "write_file")

def _purl(name, version, arch, distribution):
    return "pkg:deb/debian/%s@%s?arch=%s&distro=%s" % (name, version.replace(":", "%3A").replace("+", "%2B"), arch, distribution)

def spdx_sbom(name, image_name, packages, names, arch, distribution):
    """An SPDX 2.3 JSON SBOM of the image's Debian packages, made from the lock alone (so it is reproducible)."""
    spdx_packages = [{
        "SPDXID": "SPDXRef-Image",
        "name": image_name,
        "versionInfo": arch,
        "downloadLocation": "NOASSERTION",
        "licenseConcluded": "GPL-3.0-or-later",
        "licenseDeclared": "GPL-3.0-or-later",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
    }]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Image"}]
    for package in names:
        version = packages[package]["version"]
        spdx_id = "SPDXRef-Package-" + "".join([c if c.isalnum() or c in ".-" else "-" for c in package.elems()])
        spdx_packages.append({
            "SPDXID": spdx_id,
            "name": package,
            "versionInfo": version,
            "supplier": "Organization: Debian",
            "downloadLocation": "NOASSERTION",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "checksums": [{"algorithm": "SHA256", "checksumValue": packages[package]["sha256"]}],
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": _purl(package, version, arch, distribution)}],
        })
        relationships.append({"spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS", "relatedSpdxElement": spdx_id})

    # The namespace must be unique per document: derive it from the package set, not from time or randomness.
    fingerprint = hash(json.encode([packages[package]["sha256"] for package in names]))
    write_file(
        name = name,
        out = name + ".spdx.json",
        content = [json.encode_indent({
            "spdxVersion": "SPDX-2.3",
            "dataLicense": "CC0-1.0",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": image_name,
            "documentNamespace": "urn:distroless-python:sbom:%s:%s:%d" % (image_name, arch, fingerprint),
            "creationInfo": {"created": "1970-01-01T00:00:00Z", "creators": ["Tool: distroless-python images.bzl"]},
            "packages": spdx_packages,
            "relationships": relationships,
        }, indent = "  ")],
    )
