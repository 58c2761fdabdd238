"""The `debian` module extension: one repository per locked .deb, and a hub repository per lockfile.

    debian = use_extension("//tools/debian:extensions.bzl", "debian")
    debian.lock(name = "bullseye", lock = "//debian_packages/bullseye:lock.json")
    use_repo(debian, "bullseye")

`@bullseye//:packages.bzl` then holds the lock as Starlark data (`PACKAGES[arch][name]`, each with its
`version`, `depends` and `deb` label; `GROUPS`, the manifest's package groups; and `ARCHIVE_STATE`, the
date of the archive state it was resolved from), and `@bullseye//<arch>:<name>` is the downloaded .deb.

Each lock is checked when the extension loads it: its format version must be the one this checkout
writes, and its `manifest_sha256` must be the sha256 of the `manifest.yaml` beside it, so a manifest edited
without re-locking fails here, with the command that fixes it, instead of building stale packages.
"""

load("//tools/debian/private:deb_repository.bzl", "UPDATE_COMMAND", "deb_file", "deb_hub", "repository_name")

# The lock format tools/debian/lock.py writes (LOCK_FORMAT_VERSION there).
LOCK_FORMAT_VERSION = 2

_lock_tag = tag_class(
    doc = "A lockfile written by `bazel run //debian_packages:update`, beside the manifest.yaml it resolves.",
    attrs = {
        "name": attr.string(mandatory = True, doc = "Name of the hub repository, e.g. the Debian release."),
        "lock": attr.label(mandatory = True, allow_single_file = [".json"], doc = "The lock.json file."),
    },
)

def _workspace_path(label):
    return (label.package + "/" if label.package else "") + label.name

def _read_lock(module_ctx, lock):
    """The lock's content, after checking that it is complete, current and made from its manifest."""
    where = _workspace_path(lock)
    doc = json.decode(module_ctx.read(lock), default = None)
    if type(doc) != "dict" or type(doc.get("packages")) != "list" or type(doc.get("sources")) != "list":
        fail("%s is not a complete lock (not JSON, or truncated). Restore it with `git checkout -- %s`, or re-lock it with `%s`." % (where, where, UPDATE_COMMAND))
    if doc.get("version") != LOCK_FORMAT_VERSION:
        fail("%s has lock format version %s, but this checkout reads version %s. Re-lock it with `%s`." % (
            where,
            doc.get("version"),
            LOCK_FORMAT_VERSION,
            UPDATE_COMMAND,
        ))
    manifest = lock.same_package_label("manifest.yaml")

    # Reading the manifest makes Bazel re-run this extension whenever it changes.
    module_ctx.read(manifest)
    result = module_ctx.execute(["sha256sum", str(module_ctx.path(manifest))])
    if result.return_code != 0:
        fail("cannot hash %s: %s" % (_workspace_path(manifest), result.stderr))
    actual = result.stdout.split(" ")[0]
    if doc.get("manifest_sha256") != actual:
        fail("%s is stale: %s was edited since it was locked (the lock records manifest_sha256 %s, the manifest's is %s). Re-lock it with `%s`." % (
            where,
            _workspace_path(manifest),
            doc.get("manifest_sha256"),
            actual,
            UPDATE_COMMAND,
        ))
    return doc

def _snapshots(sources):
    """archive -> the snapshot timestamp its files are certain to be under ("" when resolved live)."""
    snapshots = {}
    for source in sources:
        if source.get("snapshot") and not snapshots.get(source["archive"]):
            snapshots[source["archive"]] = source["snapshot"]
    return snapshots

def _probes(sources):
    """archive -> an index path below its mirror, fetched only to tell an unreachable mirror from a 404."""
    probes = {}
    for source in sources:
        probes.setdefault(source["archive"], "dists/%s/InRelease" % source["suite"])
    return probes

def _debian_impl(module_ctx):
    for module in module_ctx.modules:
        for lock in module.tags.lock:
            doc = _read_lock(module_ctx, lock.lock)
            snapshots = _snapshots(doc["sources"])
            probes = _probes(doc["sources"])
            for package in doc["packages"]:
                deb_file(
                    name = repository_name(lock.name, package["arch"], package["name"]),
                    archive = package["archive"],
                    filename = package["filename"],
                    sha256 = package["sha256"],
                    package = "%s %s (%s)" % (package["name"], package["version"], package["arch"]),
                    lock = _workspace_path(lock.lock),
                    snapshot = snapshots.get(package["archive"], ""),
                    probe = probes.get(package["archive"], ""),
                )
            deb_hub(
                name = lock.name,
                lock_json = json.encode(doc["packages"]),
                archive_state = max([source["snapshot"] or source["date"] for source in doc["sources"]]),
                groups = doc.get("groups", {}),
            )

debian = module_extension(
    implementation = _debian_impl,
    tag_classes = {"lock": _lock_tag},
)
