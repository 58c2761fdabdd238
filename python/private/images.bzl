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
load("@debian_releases//:releases.bzl", "RELEASES", "UPDATE_COMMAND")
load("//python:config.bzl", "PYTHONS", "SOURCE_URL")
load("//python/private:naming.bzl", "archive_date", "dated_tag", "newest_stable", "tags", "target_name", "upstream_version", _tag = "tag")
load("//python/private:provenance.bzl", "slsa_provenance")
load("//tools/debian/private:spdx_sbom.bzl", "spdx_sbom")
load("//python/private:source_layers.bzl", "MAX_LAYERS", "by_source", "fold", "layer_plan")
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
    return _tag(version, variant, IMAGES[version].experimental)

def _release(version, config):
    """The lock of the release an entry of PYTHONS names, or a clear failure when it has none."""
    release = RELEASES.get(config.distribution)
    if not release:
        fail("python/config.bzl: %s names Debian release '%s', but debian_packages/%s/lock.json does not exist (locked releases: %s). Write debian_packages/%s/manifest.yaml, then lock it with `%s`." % (
            version,
            config.distribution,
            config.distribution,
            ", ".join(sorted(RELEASES)),
            config.distribution,
            UPDATE_COMMAND,
        ))
    _check_contract(version, config, release)
    return release

# The manifest groups the image matrix builds every variant from (README, "What is inside, and why").
REQUIRED_GROUPS = ["system", "python", "debug", "dev"]

def _check_contract(version, config, release):
    """Fails with one message naming the lock when the release lacks what this entry's images need."""
    problems = []
    missing_groups = [group for group in REQUIRED_GROUPS if group not in release.groups]
    if missing_groups:
        problems.append("no package group %s (the images need the groups %s)" % (", ".join(missing_groups), ", ".join(REQUIRED_GROUPS)))
    for arch in release.archs:
        packages = release.packages.get(arch)
        if packages == None:
            problems.append("no packages for %s (it has %s)" % (arch, ", ".join(sorted(release.packages)) or "none"))
        elif config.python + "-minimal" not in packages:
            problems.append("no %s-minimal for %s, the package the Python version is read from" % (config.python, arch))
    if problems:
        fail("python/config.bzl: %s builds %s images from %s, but that lock has %s. Name the release's architectures and groups in its manifest.yaml and re-lock it with `%s`, or change the entry." % (
            version,
            ", ".join(release.archs),
            release.lock,
            "; ".join(problems),
            UPDATE_COMMAND,
        ))

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

# Layers every image of a version and architecture has besides its packages' (base files, CA bundle, python
# symlinks, ld.so.cache, .pyc), and the debug variants' busybox links: what the layer budget leaves for sources.
_GENERATED_LAYERS = 5
_DEBUG_GENERATED_LAYERS = 1

def _source_layers(prefix, closure, packages, plan, merged_usr):
    """One deb_layer per entry of the plan, named <prefix>_<closure>_<source>; returns their names."""
    names = []
    for source, members in plan:
        name = "%s_%s_%s" % (prefix, closure, source)
        deb_layer(name = name, debs = _debs(packages, members), merged_usr = merged_usr)
        names.append(name)
    return names

def _grouped_baseline(prefix, packages, groups, config):
    """The layering before one layer per source (one layer per package group, the python group's pruned as
    the images' is), built only by the benchmark, which compares what updates cost in each."""
    names = []
    for group, members in groups:
        name = "%s_grouped_%s" % (prefix, group)
        deb_layer(name = name + ("_debs" if group == "python" else ""), debs = _debs(packages, members), merged_usr = config.merged_usr, tags = ["manual"])
        if group == "python":
            py_stdlib_prune(name = name, layer = name + "_debs", remove = config.pruned, tags = ["manual"])
        names.append(name)
    native.filegroup(name = prefix + "_grouped_layers", srcs = names, tags = ["manual"])

def _layers(version, config, arch):
    """The layers every variant of one version and architecture shares; returns their labels."""
    release = config.release
    packages = release.packages[arch]
    prefix = "%s_%s" % (version, arch)
    groups = release.groups
    system = deb_closure(packages, groups["system"])
    python = [name for name in deb_closure(packages, groups["python"]) if name not in system]
    runtime = sorted(system + python)
    busybox = deb_closure(packages, groups["debug"], exclude = runtime)

    # The -dev variants' pip, venv and ensurepip: what their closure adds to the runtime image's packages and
    # busybox, in layers the runtime variants never get.
    dev = [name for name in deb_closure(packages, groups["dev"]) if name not in runtime + busybox]

    # One layer per source in each closure; the runtime closure's smallest sources fold into one layer when
    # the largest variant (-dev) would exceed MAX_LAYERS.
    runtime_sources = by_source(packages, runtime)
    debug_sources = by_source(packages, busybox)
    dev_sources = by_source(packages, dev)
    budget = MAX_LAYERS - _GENERATED_LAYERS - _DEBUG_GENERATED_LAYERS - len(debug_sources) - len(dev_sources)
    plan = layer_plan(packages, runtime_sources, fold(packages, runtime_sources, budget))

    # The standard library is pruned from the layer of the source that ships it (python3.X).
    stdlib_layer = [source for source, members in plan if "lib%s-stdlib" % config.python in members][0]
    source_layers = _source_layers(prefix, "src", packages, [
        (source + "_debs" if source == stdlib_layer else source, members)
        for source, members in plan
    ], config.merged_usr)
    stdlib = "%s_src_%s" % (prefix, stdlib_layer)
    py_stdlib_prune(name = stdlib, layer = stdlib + "_debs", remove = config.pruned)
    source_layers = [stdlib if name == stdlib + "_debs" else name for name in source_layers]

    ca_source = [source for source, members in plan if "ca-certificates" in members][0]
    ca_bundle_layer(name = prefix + "_ca_bundle", layers = ["%s_src_%s" % (prefix, ca_source)])
    symlinks_layer(
        name = prefix + "_python_symlinks",
        symlinks = {"usr/bin/python3": config.python, "usr/bin/python": config.python},
    )
    layers = [":base_files"] + source_layers + [prefix + "_ca_bundle", prefix + "_python_symlinks"]
    ld_so_cache_layer(name = prefix + "_ld_so_cache", layers = layers, architecture = arch)
    pyc_layer(
        name = prefix + "_pyc",
        layers = layers,
        python = "usr/bin/" + config.python,
        stdlib = "usr/lib/" + config.python,
        architecture = arch,
    )

    # The debug variants' busybox, with /busybox/sh as distroless has it.
    debug_layers = _source_layers(prefix, "debug", packages, layer_plan(packages, debug_sources, []), config.merged_usr)
    symlinks_layer(name = prefix + "_busybox_links", symlinks = {"busybox/sh": "/bin/busybox", "busybox/busybox": "/bin/busybox"})
    dev_layers = _source_layers(prefix, "dev", packages, layer_plan(packages, dev_sources, []), config.merged_usr)
    _grouped_baseline(prefix, packages, [("system", system), ("python", python), ("debug", busybox), ("dev", dev)], config)

    python_version = upstream_version(packages[config.python + "-minimal"]["version"])
    _python_tests(prefix + "_python_tests", config, python_version)
    _package_tests(prefix + "_package_tests", runtime)
    _package_tests(prefix + "_debug_package_tests", busybox)
    _package_tests(prefix + "_dev_package_tests", dev)
    _dev_tests(prefix + "_dev_tests", config)
    return struct(
        archive_state = release.archive_state,
        layers = layers + [prefix + "_ld_so_cache", prefix + "_pyc"],
        debug_layers = debug_layers + [prefix + "_busybox_links"],
        dev_layers = dev_layers,
        python_version = python_version,
        debs = _debs(packages, runtime),
        debug_debs = _debs(packages, busybox),
        dev_debs = _debs(packages, dev),
    )

def _variant_image(version, config, arch, variant, shared):
    settings = VARIANTS[variant]
    prefix = "%s_%s" % (version, arch)
    name = target_name(version, arch, variant)
    tars = shared.layers + (shared.debug_layers if settings.debug else []) + (shared.dev_layers if settings.dev else [])
    if len(tars) > MAX_LAYERS:
        fail("//python:%s would have %d layers, more than MAX_LAYERS (%d) in python/private/source_layers.bzl; count the generated layers in _GENERATED_LAYERS" % (name, len(tars), MAX_LAYERS))
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
        # Not in the image: attested when it (or its index) is pushed with a key, and expected by //:verify.
        sbom = name + "_sbom",
        provenance = name + "_provenance",
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
        # An emulated architecture's command tests run under qemu: a -dev image's take about 150 s alone on
        # two cores, too close to the default five minutes on a busy machine.
        timeout = "long" if arch != "amd64" else "moderate",
    )

def _locked_python_version(version, config):
    """The Python patch version the release's lock pins (the same in every architecture of one lock)."""
    packages = config.release.packages[config.archs[0]]
    return upstream_version(packages[config.python + "-minimal"]["version"])

def image_tags():
    """Index target -> the tags :push gives it (naming.bzl's tags); `latest...` go to the newest stable version."""
    newest = newest_stable(IMAGES)
    return {
        "//python:" + version + variant: tags(
            version,
            variant,
            config.experimental,
            newest,
            _locked_python_version(version, config),
            config.release.archive_state,
        )
        for version, config in IMAGES.items()
        for variant in VARIANTS
    }

# Marks a tag oci_push and oci_push_all must never move (tools/oci/push.py): set where the registry has no
# such tag, or where it already names the digest pushed.
IMMUTABLE = "!"

def push_tags():
    """image_tags() as the push rules take them: the dated tag of each index marked IMMUTABLE."""
    tags = image_tags()
    marked = {}
    for version, config in IMAGES.items():
        dated = {
            dated_tag(_locked_python_version(version, config), archive_date(config.release.archive_state), variant, config.experimental): True
            for variant in VARIANTS
        }
        for variant in VARIANTS:
            target = "//python:" + version + variant
            marked[target] = [tag + IMMUTABLE if tag in dated else tag for tag in tags[target]]
    return marked

def release_indexes():
    """//:release's table: INDEX=PUSH=TEST,TEST... for every index (its push target, its images' structure tests)."""
    return [
        "//python:%s%s=//python:%s%s_push=%s" % (version, variant, version, variant, ",".join([
            "//python:" + target_name(version, arch, variant) + "_test"
            for arch in config.archs
        ]))
        for version, config in IMAGES.items()
        for variant in VARIANTS
    ]

def image_sboms():
    """Per-architecture image target -> its SBOM target, for every image (the push test compares them)."""
    return {
        "//python:" + target_name(version, arch, variant): "//python:" + target_name(version, arch, variant) + "_sbom"
        for version, config in IMAGES.items()
        for variant in VARIANTS
        for arch in config.archs
    }

def _entry(version, config):
    """An entry of PYTHONS with what its release declares: its archs and whether it is merged_usr."""
    release = _release(version, config)
    return struct(
        distribution = config.distribution,
        python = config.python,
        experimental = config.experimental,
        pruned = config.pruned,
        archs = release.archs,
        merged_usr = release.merged_usr,
        release = release,
    )

# Every entry with its release, checked while this file loads: a bad entry or lock then fails as this
# module's one error, before any BUILD file that uses it declares a target (which would add "no such target"
# errors). Version -> struct(distribution, python, experimental, pruned, archs, merged_usr, release).
IMAGES = {version: _entry(version, config) for version, config in PYTHONS.items()}

def python_images():
    """Every image in PYTHONS, in every architecture and variant."""
    base_files_layer(name = "base_files")
    pushed = push_tags()
    for version, config in IMAGES.items():
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
                remote_tags = pushed["//python:" + version + variant],
            )
        native.alias(name = version + ".sbom", actual = version + "_amd64_sbom")
