"""Expands python/config.bzl into images: every Python version x architecture x variant.

For version V (e.g. 3.9) and variant S ("", "-nonroot", "-debug", "-debug-nonroot", "-dev"):
  //python:V<S>                     the multi-architecture OCI image index, tagged V<S> by :push
  //python:V_<arch><_s>             the per-architecture image, e.g. //python:3.9_arm64_debug
  //python:V_<arch><_s>_test        its structure tests
  //python:V<S>_load, V<S>_push     docker load (amd64) and push of the index
  //python:V_<arch><_s>_sbom        its SPDX 2.3 SBOM (every .deb it holds, with licences from DEP-5 copyright files)
  //python:V.sbom                   the SPDX SBOM of the default amd64 image
  //python:V_<arch><_s>_provenance  its SLSA provenance v1 predicate (python/private/provenance.bzl)
"""

load("@bazel_skylib//rules:expand_template.bzl", "expand_template")
load("@bazel_skylib//rules:write_file.bzl", "write_file")
load("@debian_releases//:releases.bzl", "RELEASES")
load("//python:config.bzl", "PYTHONS", "SOURCE_URL")
load("//python/private:naming.bzl", "newest_stable", "tags", "target_name", "upstream_version", _tag = "tag")
load("//python/private:provenance.bzl", "slsa_provenance")
load("//python/private:sbom.bzl", "spdx_sbom")
load("//tools/debian:defs.bzl", "deb_closure", "deb_layer")
load("//tools/image:defs.bzl", "base_files_layer", "ca_bundle_layer", "ld_so_cache_layer", "py_stdlib_prune", "pyc_layer", "symlinks_layer")
load("//tools/oci:defs.bzl", "container_structure_test", "oci_image", "oci_image_index", "oci_load", "oci_push", "oci_run")

# The manifest annotation that carries it, so a pulled image says how fresh its packages are.
ARCHIVE_STATE_ANNOTATION = "debian.archive.timestamp"

# The images' licence (see README.md, Licence), in their label and their SBOMs.
IMAGE_LICENSE = "GPL-3.0-or-later"

_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Variant suffix -> (debug: the busybox shell; nonroot: user 65532; dev: pip, venv and ensurepip on top of the
# debug image, to build venvs that the runtime images of the same lock run unchanged).
VARIANTS = {
    "": struct(debug = False, nonroot = False, dev = False),
    "-nonroot": struct(debug = False, nonroot = True, dev = False),
    "-debug": struct(debug = True, nonroot = False, dev = False),
    "-debug-nonroot": struct(debug = True, nonroot = True, dev = False),
    "-dev": struct(debug = True, nonroot = False, dev = True),
}

def _labels(version, python_version):
    labels = {
        "org.opencontainers.image.licenses": IMAGE_LICENSE,
        "org.opencontainers.image.title": "distroless python" + version,
        "org.opencontainers.image.version": python_version,
        "python.version": python_version,
    }
    if SOURCE_URL:
        labels["org.opencontainers.image.source"] = SOURCE_URL
    return labels

def _debs(packages, names):
    return [packages[name]["deb"] for name in names]

def tag(version, variant):
    """The tag :push gives an image: 3.9-nonroot, or 3.14-experimental-debug for an experimental version."""
    return _tag(version, variant, PYTHONS[version].experimental)

def _release(version, config):
    """The lock of the release an entry of PYTHONS names, or a clear failure when it has none."""
    release = RELEASES.get(config.distribution)
    if not release:
        fail("python/config.bzl: %s names Debian release '%s', but debian_packages/%s/lock.json does not exist (locked releases: %s). Write debian_packages/%s/manifest.yaml, then lock it with `tools/bazel run //debian_packages:update`." % (
            version,
            config.distribution,
            config.distribution,
            ", ".join(sorted(RELEASES)),
            config.distribution,
        ))
    return release

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

def _python_tests(name, config, python_version):
    expand_template(
        name = name,
        out = name + ".yaml",
        template = "//tests:python.yaml",
        substitutions = {
            "{PYTHON}": config.python,
            "{PYTHON_VERSION}": python_version,
            "{STDLIB}": "/usr/lib/" + config.python,
        },
    )

def _dev_tests(name, config):
    expand_template(
        name = name,
        out = name + ".yaml",
        template = "//tests:dev.yaml",
        substitutions = {"{PYTHON}": config.python, "{VERSION}": config.python[len("python"):].replace(".", "\\\\.")},
    )

def _layers(version, config, arch):
    """The layers every variant of one version and architecture shares; returns their labels."""
    release = _release(version, config)
    packages = release.packages[arch]
    prefix = "%s_%s" % (version, arch)
    groups = release.groups
    system = deb_closure(packages, groups["system"])
    python = [name for name in deb_closure(packages, groups["python"]) if name not in system]

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
    ld_so_cache_layer(name = prefix + "_ld_so_cache", layers = layers, architecture = arch)
    pyc_layer(
        name = prefix + "_pyc",
        layers = layers,
        python = "usr/bin/" + config.python,
        stdlib = "usr/lib/" + config.python,
        architecture = arch,
    )

    # The debug variants' busybox, with /busybox/sh as distroless has it.
    busybox = deb_closure(packages, groups["debug"])
    deb_layer(name = prefix + "_busybox_deb", debs = _debs(packages, busybox), merged_usr = config.merged_usr)
    symlinks_layer(name = prefix + "_busybox_links", symlinks = {"busybox/sh": "/bin/busybox", "busybox/busybox": "/bin/busybox"})

    # The -dev variants' pip, venv and ensurepip: what their closure adds to the runtime image's packages and
    # busybox, in one layer the runtime variants never get.
    dev = [name for name in deb_closure(packages, groups["dev"]) if name not in system + python + busybox]
    deb_layer(name = prefix + "_dev_debs", debs = _debs(packages, dev), merged_usr = config.merged_usr)

    python_version = upstream_version(packages[config.python + "-minimal"]["version"])
    _python_tests(prefix + "_python_tests", config, python_version)
    _package_tests(prefix + "_package_tests", system + python)
    _package_tests(prefix + "_debug_package_tests", busybox)
    _package_tests(prefix + "_dev_package_tests", dev)
    _dev_tests(prefix + "_dev_tests", config)
    return struct(
        archive_state = release.archive_state,
        layers = layers + [prefix + "_ld_so_cache", prefix + "_pyc"],
        python_version = python_version,
        debs = _debs(packages, system + python),
        debug_debs = _debs(packages, busybox),
        dev_debs = _debs(packages, dev),
    )

def _variant_image(version, config, arch, variant, shared):
    settings = VARIANTS[variant]
    prefix = "%s_%s" % (version, arch)
    name = target_name(version, arch, variant)
    tars = shared.layers + ([prefix + "_busybox_deb", prefix + "_busybox_links"] if settings.debug else [])
    tars += [prefix + "_dev_debs"] if settings.dev else []
    oci_image(
        name = name,
        tars = tars,
        entrypoint = ["/usr/bin/" + config.python],
        env = {
            "LANG": "C.UTF-8",
            "PATH": _PATH + (":/busybox" if settings.debug else ""),
        },
        user = "65532" if settings.nonroot else "",
        workdir = "/home/nonroot" if settings.nonroot else "",
        labels = _labels(version, shared.python_version),
        annotations = {ARCHIVE_STATE_ANNOTATION: shared.archive_state},
        architecture = arch,
        variant = "v8" if arch == "arm64" else "",
    )
    configs = [
        prefix + "_python_tests",
        prefix + "_package_tests",
        "//tests:omitted_libraries.yaml",
        "//tests:nonroot.yaml" if settings.nonroot else "//tests:root.yaml",
    ]
    if settings.debug:
        configs += [prefix + "_debug_package_tests", "//tests:debug.yaml"]
    if settings.dev:
        configs += [prefix + "_dev_package_tests", prefix + "_dev_tests"]
    else:
        configs.append("//tests:no_build_tools.yaml")
    spdx_sbom(
        name = name + "_sbom",
        debs = shared.debs + (shared.debug_debs if settings.debug else []) + (shared.dev_debs if settings.dev else []),
        image_name = "distroless/python:" + tag(version, variant),
        architecture = arch,
        distribution = config.distribution,
        image_license = IMAGE_LICENSE,
    )
    slsa_provenance(
        name = name + "_provenance",
        target = "//python:" + name,
        dependencies = ["//debian_packages:%s/%s" % (config.distribution, file) for file in ("lock.json", "manifest.yaml")],
    )
    container_structure_test(
        name = name + "_test",
        image = name,
        configs = configs,
        # Command tests start a private Docker engine, which needs the build root itself, not a sandbox.
        tags = ["no-sandbox", "requires-engine"],
    )

def image_tags():
    """Index target -> the tags :push gives it; `latest...` go to the newest stable version."""
    newest = newest_stable(PYTHONS)
    return {
        "//python:" + version + variant: tags(version, variant, PYTHONS[version].experimental, newest)
        for version in PYTHONS
        for variant in VARIANTS
    }

def image_sboms():
    """Per-architecture image target -> its SBOM target, for every image (the push test compares them)."""
    return {
        "//python:" + target_name(version, arch, variant): "//python:" + target_name(version, arch, variant) + "_sbom"
        for version, config in PYTHONS.items()
        for variant in VARIANTS
        for arch in config.archs
    }

def python_images():
    """Every image in PYTHONS, in every architecture and variant."""
    base_files_layer(name = "base_files")
    for version, config in PYTHONS.items():
        shared = {arch: _layers(version, config, arch) for arch in config.archs}
        for variant in VARIANTS:
            for arch in config.archs:
                _variant_image(version, config, arch, variant, shared[arch])
            oci_image_index(
                name = version + variant,
                images = [target_name(version, arch, variant) for arch in config.archs],
            )
            oci_load(
                name = version + variant + "_load",
                image = target_name(version, "amd64", variant),
                repo_tags = ["distroless/python:" + tag(version, variant)],
            )
            # tools/bazel run //python:3.13_run -- -c 'print(1)': DOCKER_HOST's engine, else a private one.
            oci_run(name = version + variant + "_run", image = target_name(version, "amd64", variant))
            oci_push(
                name = version + variant + "_push",
                image = version + variant,
                remote_tags = image_tags()["//python:" + version + variant],
                attest_images = [target_name(version, arch, variant) for arch in config.archs],
                sboms = [target_name(version, arch, variant) + "_sbom" for arch in config.archs],
                provenances = [target_name(version, arch, variant) + "_provenance" for arch in config.archs],
            )
        native.alias(name = version + ".sbom", actual = version + "_amd64_sbom")
