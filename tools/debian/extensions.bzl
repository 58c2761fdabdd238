"""The `debian` module extension: one repository per locked .deb, and a hub repository per lockfile.

    debian = use_extension("//tools/debian:extensions.bzl", "debian")
    debian.lock(name = "bullseye", lock = "//debian_packages/bullseye:lock.json")
    use_repo(debian, "bullseye")

`@bullseye//:packages.bzl` then holds the lock as Starlark data (`PACKAGES[arch][name]`, each with its
`version`, `depends` and `deb` label), and `@bullseye//<arch>:<name>` is the downloaded .deb.
"""

load("//tools/debian/private:deb_repository.bzl", "deb_file", "deb_hub", "repository_name")

_lock_tag = tag_class(
    doc = "A lockfile written by `bazel run //debian_packages:lock`.",
    attrs = {
        "name": attr.string(mandatory = True, doc = "Name of the hub repository, e.g. the Debian release."),
        "lock": attr.label(mandatory = True, doc = "The lock.json file."),
    },
)

def _debian_impl(module_ctx):
    for module in module_ctx.modules:
        for lock in module.tags.lock:
            packages = json.decode(module_ctx.read(lock.lock))["packages"]
            for package in packages:
                deb_file(
                    name = repository_name(lock.name, package["arch"], package["name"]),
                    archive = package["archive"],
                    filename = package["filename"],
                    sha256 = package["sha256"],
                )
            deb_hub(name = lock.name, lock_json = json.encode(packages))

debian = module_extension(
    implementation = _debian_impl,
    tag_classes = {"lock": _lock_tag},
)
