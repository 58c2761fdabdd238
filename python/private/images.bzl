"""Expands python/config.bzl into images: every Python version x architecture x variant."""

load("@bazel_skylib//rules:expand_template.bzl", "expand_template")
load("@bazel_skylib//rules:write_file.bzl", "write_file")
load("@bullseye//:packages.bzl", bullseye = "PACKAGES")
load("//python:config.bzl", "PYTHONS", "SOURCE_URL")
load("//tools/debian:defs.bzl", "deb_closure", "deb_layer")
load("//tools/image:defs.bzl", "base_files_layer", "ca_bundle_layer", "ld_so_cache_layer", "py_stdlib_prune", "pyc_layer", "symlinks_layer")
load("//tools/oci:defs.bzl", "container_structure_test", "oci_image", "oci_load", "oci_push")

_LOCKS = {"bullseye": bullseye}

_ENV = {
    "LANG": "C.UTF-8",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
}

def _upstream_version(debian_version):
    """3.9.2-1+deb11u1 -> 3.9.2"""
    return debian_version.split(":")[-1].split("-")[0].split("+")[0]

def _labels(version, python_version):
    labels = {
        "org.opencontainers.image.licenses": "GPL-3.0-or-later",
        "org.opencontainers.image.title": "distroless python" + version,
        "org.opencontainers.image.version": python_version,
        "python.version": python_version,
    }
    if SOURCE_URL:
        labels["org.opencontainers.image.source"] = SOURCE_URL
    return labels

def _debs(packages, names):
    return [packages[name]["deb"] for name in names]

def _package_tests(name, packages):
    """Structure tests, as JSON (which is YAML), that every installed package is visible to scanners."""
    tests = []
    for package in packages:
        tests.append({"name": package + " is registered", "path": "/var/lib/dpkg/status.d/" + package, "shouldExist": True})
        tests.append({"name": package + " keeps its copyright", "path": "/usr/share/doc/%s/copyright" % package, "shouldExist": True})
    write_file(
        name = name,
        out = name + ".yaml",
        content = [json.encode({"schemaVersion": "2.0.0", "fileExistenceTests": tests})],
    )

def _purl(name, version, arch, distribution):
    return "pkg:deb/debian/%s@%s?arch=%s&distro=%s" % (name, version.replace(":", "%3A").replace("+", "%2B"), arch, distribution)

def _sbom(name, image_name, packages, names, arch, distribution):
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

def _structure_tests(prefix, config, python_version, packages):
    expand_template(
        name = prefix + "_python_tests",
        out = prefix + "_python_tests.yaml",
        template = "//tests:python.yaml",
        substitutions = {
            "{PYTHON}": config.python,
            "{PYTHON_VERSION}": python_version,
            "{STDLIB}": "/usr/lib/" + config.python,
        },
    )
    _package_tests(prefix + "_package_tests", packages)
    common = [prefix + "_python_tests", prefix + "_package_tests"]

    # Command tests start a private Docker engine, which needs the build root itself, not a sandbox.
    tags = ["no-sandbox", "requires-engine"]
    container_structure_test(name = prefix + "_test", image = prefix, configs = common + ["//tests:root.yaml"], tags = tags)
    container_structure_test(name = prefix + "_nonroot_test", image = prefix + "_nonroot", configs = common + ["//tests:nonroot.yaml"], tags = tags)

def python_image(version, config, arch):
    """The layers and images of one Python version for one architecture."""
    packages = _LOCKS[config.distribution][arch]
    prefix = "%s_%s" % (version, arch)
    system = deb_closure(packages, config.system_packages)
    python = [name for name in deb_closure(packages, config.python_packages) if name not in system]

    deb_layer(name = prefix + "_system_debs", debs = _debs(packages, system), merged_usr = config.merged_usr)
    deb_layer(name = prefix + "_python_debs", debs = _debs(packages, python), merged_usr = config.merged_usr)
    py_stdlib_prune(name = prefix + "_python", layer = prefix + "_python_debs", remove = config.pruned)
    ca_bundle_layer(name = prefix + "_ca_bundle", layers = [prefix + "_system_debs"])
    symlinks_layer(
        name = prefix + "_python_symlinks",
        symlinks = {"usr/bin/python3": config.python, "usr/bin/python": config.python},
    )
    layers = [
        ":base_files",
        prefix + "_system_debs",
        prefix + "_python",
        prefix + "_ca_bundle",
        prefix + "_python_symlinks",
    ]
    ld_so_cache_layer(name = prefix + "_ld_so_cache", layers = layers)
    pyc_layer(
        name = prefix + "_pyc",
        layers = layers,
        python = "usr/bin/" + config.python,
        stdlib = "usr/lib/" + config.python,
    )
    python_version = _upstream_version(packages[config.python + "-minimal"]["version"])
    oci_image(
        name = prefix,
        tars = layers + [prefix + "_ld_so_cache", prefix + "_pyc"],
        entrypoint = ["/usr/bin/" + config.python],
        env = _ENV,
        labels = _labels(version, python_version),
        architecture = arch,
        variant = "v8" if arch == "arm64" else None,
    )
    oci_image(
        name = prefix + "_nonroot",
        base = prefix,
        user = "65532",
        workdir = "/home/nonroot",
    )
    _structure_tests(prefix, config, python_version, system + python)
    _sbom(prefix + "_sbom", "distroless/python:" + version, packages, sorted(system + python), arch, config.distribution)

def image_tags():
    """Image target -> the tags :push gives it: <version>[-nonroot], and latest for the newest version."""
    newest = sorted(PYTHONS.keys(), key = lambda version: [int(part) for part in version.split(".")])[-1]
    tags = {}
    for version in PYTHONS:
        tags["//python:" + version] = [version] + (["latest"] if version == newest else [])
        tags["//python:%s-nonroot" % version] = [version + "-nonroot"] + (["latest-nonroot"] if version == newest else [])
    return tags

def python_images():
    """Every image in PYTHONS; //python:<version> names the amd64 image."""
    base_files_layer(name = "base_files")
    for version, config in PYTHONS.items():
        for arch in config.archs:
            python_image(version, config, arch)
        native.alias(name = version + ".sbom", actual = version + "_amd64_sbom")
        for variant in ["", "-nonroot"]:
            name = version + variant
            native.alias(name = name, actual = version + "_amd64" + variant.replace("-", "_"))
            oci_load(name = name + "_load", image = name, repo_tags = ["distroless/python:" + name])
            oci_push(name = name + "_push", image = name, remote_tags = image_tags()["//python:" + name])
