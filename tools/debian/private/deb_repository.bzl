"""Repository rules behind the `debian` extension."""

# The mirror of each archive comes from the environment (tools/bazel sets it from the apt sources), never
# from the repository: the lock holds pool paths only.
MIRROR_VARIABLES = {
    "debian": "DEBIAN_MIRROR",
    "debian-security": "DEBIAN_SECURITY_MIRROR",
}

def repository_name(hub, arch, package):
    """A valid repository name for one package of one architecture ('+' is not allowed in names)."""
    return "%s_%s_%s" % (hub, arch, package.replace("+", "x"))

def _deb_file_impl(rctx):
    variable = MIRROR_VARIABLES.get(rctx.attr.archive)
    if not variable:
        fail("lock entry %s names archive '%s'; known archives: %s" % (
            rctx.attr.filename,
            rctx.attr.archive,
            ", ".join(MIRROR_VARIABLES.keys()),
        ))
    mirror = rctx.os.environ.get(variable, "")
    if not mirror:
        fail("%s is not set, so %s cannot be downloaded. Run Bazel through tools/bazel, which sets it from " % (
            variable,
            rctx.attr.filename,
        ) + "the machine's apt sources, or pass --repo_env=%s=<mirror base URL>." % variable)

    # The sha256 makes Bazel's repository cache (and --distdir) serve the file when it has it, and
    # rejects a tampered download.
    rctx.download(
        url = mirror.rstrip("/") + "/" + rctx.attr.filename,
        output = "package.deb",
        sha256 = rctx.attr.sha256,
    )
    rctx.file("BUILD.bazel", 'exports_files(["package.deb"])\n')

deb_file = repository_rule(
    implementation = _deb_file_impl,
    doc = "Downloads one .deb from the configured mirror, checked against its locked sha256.",
    attrs = {
        "archive": attr.string(mandatory = True, doc = "The archive the pool path belongs to (debian, debian-security)."),
        "filename": attr.string(mandatory = True, doc = "The pool path, e.g. pool/main/d/dash/dash_0.5.11_amd64.deb."),
        "sha256": attr.string(mandatory = True, doc = "The .deb's sha256 from the lock."),
    },
    environ = MIRROR_VARIABLES.values(),
)

def _deb_hub_impl(rctx):
    packages = json.decode(rctx.attr.lock_json)
    by_arch = {}
    for package in packages:
        by_arch.setdefault(package["arch"], {})[package["name"]] = package
    data = {}
    for arch, named in by_arch.items():
        aliases = []
        data[arch] = {}
        for name in sorted(named):
            package = named[name]
            aliases.append('alias(\n    name = "%s",\n    actual = "@%s//:package.deb",\n)\n' % (
                name,
                repository_name(rctx.attr.name.split("~")[-1], arch, name),
            ))
            data[arch][name] = {
                "deb": "@%s//%s:%s" % (rctx.attr.name.split("~")[-1], arch, name),
                "depends": package["depends"],
                "version": package["version"],
                "sha256": package["sha256"],
                "filename": package["filename"],
            }
        rctx.file(arch + "/BUILD.bazel", 'package(default_visibility = ["//visibility:public"])\n\n' + "\n".join(aliases))
    rctx.file("BUILD.bazel", 'exports_files(["packages.bzl"])\n')
    rctx.file("packages.bzl", '"""The lock as Starlark data: PACKAGES[arch][name]."""\n\nPACKAGES = ' + json.encode_indent(data, indent = "    ") + "\n")

deb_hub = repository_rule(
    implementation = _deb_hub_impl,
    doc = "The lock as Starlark data plus one alias per .deb, so BUILD files can select packages by name.",
    attrs = {
        "lock_json": attr.string(mandatory = True, doc = "The lock's package list, JSON-encoded."),
    },
)
