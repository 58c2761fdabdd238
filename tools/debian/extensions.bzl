"""The `debian` module extension: every release's lock, through one hub repository.

    debian = use_extension("//tools/debian:extensions.bzl", "debian")
    debian.releases(directory = "debian_packages")
    use_repo(debian, "debian_releases")

Each subdirectory of `directory` that holds a `lock.json` (written by `bazel run //debian_packages:update`
beside its `manifest.yaml`) is a release, named after the subdirectory: adding one needs no edit here or in
MODULE.bazel. `@debian_releases//:releases.bzl` holds them all as Starlark data, `RELEASES[release]`, a struct
with `packages` (`[arch][name]`, each with its `version`, `depends`, `deb` label, and the Debian `source`
package it is built from with that source's `source_version`), `groups` (the manifest's
package groups), `archs` and `merged_usr` (the release's, from its manifest) and `archive_state` (the date of the archive state it was resolved from), and `lock`, the
lock's path in the workspace. `@debian_releases//<release>/<arch>:<name>` is the downloaded .deb.

Each lock is checked when the extension loads it: its format version must be the one this checkout
writes (tools/debian/lock_format.json, which lock.py reads too), every package must have that format's fields, and its `manifest_sha256` must be the sha256 of the `manifest.yaml` beside it, so a manifest edited
without re-locking fails here, with the command that fixes it, instead of building stale packages.
"""

load("//tools/debian/private:deb_repository.bzl", "deb_file", "deb_hub", "repository_name")

# The lock format tools/debian/lock.py writes: its version and package fields, declared once for both.
LOCK_FORMAT = Label("//tools/debian:lock_format.json")

_releases_tag = tag_class(
    doc = "Every release locked below a directory of the root module, through one hub repository.",
    attrs = {
        "directory": attr.string(default = "debian_packages", doc = "The directory, relative to the root module, holding one <release>/lock.json (and manifest.yaml) per release."),
        "name": attr.string(default = "debian_releases", doc = "Name of the hub repository."),
    },
)

def _read_lock(module_ctx, lock, where, lock_format):
    """The lock's content, after checking that it is complete, current and made from its manifest."""
    update_command = lock_format["update_command"]
    doc = json.decode(module_ctx.read(lock), default = None)
    if type(doc) != "dict" or type(doc.get("packages")) != "list" or type(doc.get("sources")) != "list":
        fail("%s is not a complete lock (not JSON, or truncated). Restore it with `git checkout -- %s`, or re-lock it with `%s`." % (where, where, update_command))
    if doc.get("version") != lock_format["version"]:
        fail("%s has lock format version %s, but this checkout reads version %s. Re-lock it with `%s`." % (
            where,
            doc.get("version"),
            lock_format["version"],
            update_command,
        ))
    # Every field the format declares, of the lock, its sources and its packages, as tools/debian/lock_file.py checks.
    missing = [field for field in lock_format["fields"] if field not in doc]
    for source in doc["sources"]:
        missing.extend(["sources[].%s" % field for field in lock_format["source_fields"] if field not in source])
    for package in doc["packages"]:
        missing.extend(["%s.%s" % (package.get("name"), field) for field in lock_format["package_fields"] if field not in package])
    if missing:
        fail("%s is not a complete lock: it lacks %s. Restore it with `git checkout -- %s`, or re-lock it with `%s`." % (
            where,
            ", ".join(sorted({field: True for field in missing}.keys())),
            where,
            update_command,
        ))
    _check_closure(doc, where, update_command)
    manifest = lock.dirname.get_child("manifest.yaml")
    manifest_where = where.rsplit("/", 1)[0] + "/manifest.yaml"
    if not manifest.exists:
        fail("%s has no manifest.yaml beside it; a lock is written from its release's manifest by `%s`." % (where, update_command))

    # Reading the manifest makes Bazel re-run this extension whenever it changes.
    module_ctx.read(manifest)
    result = module_ctx.execute(["sha256sum", str(manifest)])
    if result.return_code != 0:
        fail("cannot hash %s: %s" % (manifest_where, result.stderr))
    actual = result.stdout.split(" ")[0]
    if doc.get("manifest_sha256") != actual:
        fail("%s is stale: %s was edited since it was locked (the lock records manifest_sha256 %s, the manifest's is %s). Re-lock it with `%s`." % (
            where,
            manifest_where,
            doc.get("manifest_sha256"),
            actual,
            update_command,
        ))
    return doc

def _check_closure(doc, where, update_command):
    """Fails, naming every gap at once, when a group's package or a dependency has no entry for an architecture.

    A lock written by the update command is closed; a gap means the file was edited or damaged, so the fix is
    the lock (restore or re-lock), not the manifest, which still names the package.
    """
    names = {}
    for package in doc["packages"]:
        names.setdefault(package["arch"], {})[package["name"]] = package
    gaps = []
    for arch, packages in sorted(names.items()):
        for group, members in sorted(doc.get("groups", {}).items()):
            gaps.extend(["%s (%s, group '%s')" % (name, arch, group) for name in members if name not in packages])
        for name, package in sorted(packages.items()):
            gaps.extend(["%s (%s, a dependency of %s)" % (dep, arch, name) for dep in package["depends"] if dep not in packages])
    if gaps:
        fail("%s is not a complete lock: it has no entry for %s. The lock was edited or damaged since the update command wrote it; restore it with `git checkout -- %s`, or re-lock it with `%s`." % (
            where,
            ", ".join(gaps),
            where,
            update_command,
        ))

def _snapshots(sources):
    """archive -> the snapshot timestamps to try, in order, for its files (every suite's, oldest first)."""
    snapshots = {}
    for source in sources:
        snapshots[source["archive"]] = sorted({t: True for t in snapshots.get(source["archive"], []) + source["snapshots"]}.keys())
    return snapshots

def _probes(sources):
    """archive -> an index path below its mirror, fetched only to tell an unreachable mirror from a 404."""
    probes = {}
    for source in sources:
        probes.setdefault(source["archive"], "dists/%s/InRelease" % source["suite"])
    return probes

def _release_locks(module_ctx, directory):
    """Release name -> (the path of its lock.json, that path in the workspace), for every locked release."""
    # This module's own directory, also when another workspace depends on it (a service in its own repository).
    root = module_ctx.path(Label("//:MODULE.bazel")).dirname
    releases_dir = root.get_child(directory)
    if not releases_dir.exists:
        fail("debian.releases(directory = \"%s\"): no such directory in the workspace; it holds one <release>/manifest.yaml and lock.json per release." % directory)
    locks = {}

    # Listing the directory makes Bazel re-run this extension when a release is added or removed.
    for release_dir in releases_dir.readdir():
        lock = release_dir.get_child("lock.json")
        if lock.exists:
            locks[release_dir.basename] = (lock, "%s/%s/lock.json" % (directory, release_dir.basename))
    return locks

def _debian_impl(module_ctx):
    lock_format = json.decode(module_ctx.read(LOCK_FORMAT))
    for module in module_ctx.modules:
        for tag in module.tags.releases:
            # The workspace that builds the images (this module, or a copy of it as the root); not a module
            # that depends on distroless_python, which uses its images.
            if not module.is_root and module.name != "distroless_python":
                fail("debian.releases is for the images' own module (found in %s): depend on distroless_python's images instead" % module.name)
            releases = {}
            for release, (lock, where) in sorted(_release_locks(module_ctx, tag.directory).items()):
                doc = _read_lock(module_ctx, lock, where, lock_format)
                snapshots = _snapshots(doc["sources"])
                probes = _probes(doc["sources"])
                for package in doc["packages"]:
                    deb_file(
                        name = repository_name(release, package["arch"], package["name"]),
                        archive = package["archive"],
                        filename = package["filename"],
                        sha256 = package["sha256"],
                        package = "%s %s (%s)" % (package["name"], package["version"], package["arch"]),
                        lock = where,
                        snapshots = snapshots.get(package["archive"], []),
                        probe = probes.get(package["archive"], ""),
                    )
                releases[release] = {
                    "archive_state": max([source["snapshot"] or source["date"] for source in doc["sources"]]),
                    "archs": doc["archs"],
                    "merged_usr": doc["merged_usr"],
                    "groups": doc.get("groups", {}),
                    "lock": where,
                    "packages": doc["packages"],
                }
            deb_hub(name = tag.name, releases_json = json.encode(releases), update_command = lock_format["update_command"])

debian = module_extension(
    implementation = _debian_impl,
    tag_classes = {"releases": _releases_tag},
)
