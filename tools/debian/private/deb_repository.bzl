"""Repository rules behind the `debian` extension."""

# The mirror of each archive comes from the environment (tools/bazel sets it from the apt sources), never
# from the repository: the lock holds pool paths only. Which variable names which archive, and the snapshot
# service's variable and layout, are in the archive table.
ARCHIVE_TABLE = Label("//tools/debian:archives.json")

# The lock format's declaration, which names the command that re-locks every release and the build root's
# pins to versions the mirror serves.
LOCK_FORMAT = Label("//tools/debian:lock_format.json")

def repository_name(hub, arch, package):
    """A valid repository name for one package of one architecture ('+' is not allowed in names)."""
    return "%s_%s_%s" % (hub, arch, package.replace("+", "x"))

def _deb_urls(rctx, archives, mirror):
    urls = [mirror + "/" + rctx.attr.filename]
    service = (rctx.getenv(archives["snapshot_variable"]) or "").rstrip("/")
    if service:
        # In the lock's order: a timestamp whose import predates the file answers 404, and the next is tried.
        for timestamp in rctx.attr.snapshots:
            path = archives["snapshot_path"].format(archive = rctx.attr.archive, timestamp = timestamp)
            urls.append("%s/%s/%s" % (service, path, rctx.attr.filename))
    return urls

# Exits 0 when the URL can be fetched. Bazel's downloader cannot probe a plain-http mirror (the usual apt
# source): it drops http URLs given without a checksum, and an index has no checksum to give.
_PROBE_SCRIPT = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20).close()"

def _mirror_answers(rctx, url):
    python = rctx.which("python3")
    if not python:
        fail("%s could not be downloaded, and python3, which checks whether the mirror is reachable, is not on PATH. Run Bazel through tools/bazel, whose build root has python3." % rctx.attr.filename)
    return rctx.execute([python, "-c", _PROBE_SCRIPT, url], timeout = 60).return_code == 0

def _missing_deb_message(rctx, archives, variable, mirror, urls, update_command):
    """Why the .deb could not be had, and what to do: an unreachable mirror, or a pin the mirror dropped."""
    pin = "%s pins %s from %s" % (rctx.attr.lock, rctx.attr.package, rctx.attr.filename)
    if rctx.attr.probe and not _mirror_answers(rctx, mirror + "/" + rctx.attr.probe):
        return "%s, but the Debian mirror in %s (%s) is unreachable: fetching %s failed. Check the network, or set %s to a reachable Debian mirror's base URL." % (
            pin,
            variable,
            mirror,
            rctx.attr.probe,
            variable,
        )
    snapshot_variable = archives["snapshot_variable"]
    snapshot = rctx.getenv(snapshot_variable) or ""
    if len(urls) > 1:
        return "%s, and neither the mirror in %s nor the snapshot service in %s at %s serves it (tried %s). Run `%s` to re-lock to versions the mirror serves." % (
            pin,
            variable,
            snapshot_variable,
            ", ".join(rctx.attr.snapshots),
            ", ".join(urls),
            update_command,
        )
    if not rctx.attr.snapshots:
        fallback = "the lock names no snapshot timestamps, so no snapshot service can stand in"
    elif not snapshot:
        fallback = "or set %s to a Debian snapshot service's base URL, from which the build then fetches it at the lock's snapshot %s" % (snapshot_variable, " or ".join(rctx.attr.snapshots))
    else:
        fallback = ""
    return "%s, which the mirror in %s (%s) no longer serves: Debian's archive drops a version once its suite has moved on. Run `%s` to re-lock to versions the mirror serves (%s)." % (
        pin,
        variable,
        mirror,
        update_command,
        fallback,
    )

def _deb_file_impl(rctx):
    archives = json.decode(rctx.read(ARCHIVE_TABLE))
    update_command = json.decode(rctx.read(LOCK_FORMAT))["update_command"]
    variable = archives["mirror_variables"].get(rctx.attr.archive)
    if not variable:
        fail("lock entry %s names archive '%s'; known archives: %s" % (
            rctx.attr.filename,
            rctx.attr.archive,
            ", ".join(archives["mirror_variables"].keys()),
        ))

    # getenv makes Bazel fetch again when the variable changes.
    mirror = (rctx.getenv(variable) or "").rstrip("/")
    if not mirror:
        fail("%s is not set, so %s cannot be downloaded. Run Bazel through tools/bazel, which sets it from " % (
            variable,
            rctx.attr.filename,
        ) + "the machine's apt sources, or pass --repo_env=%s=<mirror base URL>." % variable)

    # The sha256 makes Bazel's repository cache (and --distdir) serve the file when it has it, and
    # rejects a tampered download; the URLs are tried in order.
    urls = _deb_urls(rctx, archives, mirror)
    result = rctx.download(url = urls, output = "package.deb", sha256 = rctx.attr.sha256, allow_fail = True)
    if not result.success:
        _fail_with_what_was_served(rctx, archives, variable, mirror, urls, update_command)
    rctx.file("BUILD.bazel", 'exports_files(["package.deb"])\n')

# Fetches one URL and prints the sha256 of what it serves: an unchecked rctx.download gives no result here, so
# the root's Python fetches it.
_SERVED_SHA256 = """
import hashlib, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=60) as response:
        print(hashlib.sha256(response.read()).hexdigest())
except OSError:
    pass
"""

def _fail_with_what_was_served(rctx, archives, variable, mirror, urls, update_command):
    """Tells a file whose sha256 differs from the lock's (tampering, not an archive move) from a missing one."""
    for url in urls:
        served = rctx.execute(["python3", "-c", _SERVED_SHA256, url], timeout = 120).stdout.strip()
        if served and served != rctx.attr.sha256:
            fail(("%s pins %s from %s with sha256 %s, but %s serves a file with sha256 %s: the mirror or the lock " +
                  "has been tampered with; do not re-lock blindly. Compare the lock with its history " +
                  "(git log -p %s) and the file with another mirror before trusting either.") % (
                rctx.attr.lock,
                rctx.attr.package,
                rctx.attr.filename,
                rctx.attr.sha256,
                url,
                served,
                rctx.attr.lock,
            ))
    fail(_missing_deb_message(rctx, archives, variable, mirror, urls, update_command))

deb_file = repository_rule(
    implementation = _deb_file_impl,
    doc = """Downloads one .deb, checked against its locked sha256.

From the mirror first, then, when DEBIAN_SNAPSHOT_MIRROR is set, from the snapshot service at each of
the lock's snapshot timestamps in turn (the one it was resolved at, or a few after a live-resolved
suite's Release date). A .deb neither serves fails with one message
naming the lock, the package and what to do.""",
    attrs = {
        "archive": attr.string(mandatory = True, doc = "The archive the pool path belongs to (debian, debian-security)."),
        "filename": attr.string(mandatory = True, doc = "The pool path, e.g. pool/main/d/dash/dash_0.5.11_amd64.deb."),
        "sha256": attr.string(mandatory = True, doc = "The .deb's sha256 from the lock."),
        "package": attr.string(doc = "Name, version and architecture, for messages."),
        "lock": attr.string(doc = "The lock file's workspace path, for messages."),
        "snapshots": attr.string_list(doc = "The snapshot timestamps to try, in order, when the mirror does not serve the file."),
        "probe": attr.string(doc = "A path below the mirror (an InRelease) that tells an unreachable mirror from a missing file."),
    },
)

def _deb_hub_impl(rctx):
    releases = json.decode(rctx.attr.releases_json)
    data = {}
    for release, locked in sorted(releases.items()):
        by_arch = {}
        for package in locked["packages"]:
            by_arch.setdefault(package["arch"], {})[package["name"]] = package
        packages = {}
        for arch, named in sorted(by_arch.items()):
            aliases = []
            packages[arch] = {}
            for name in sorted(named):
                package = named[name]
                aliases.append('alias(\n    name = "%s",\n    actual = "@%s//:package.deb",\n)\n' % (
                    name,
                    repository_name(release, arch, name),
                ))
                packages[arch][name] = {
                    "deb": "@@%s//%s/%s:%s" % (rctx.attr.name, release, arch, name),
                    "depends": package["depends"],
                    "version": package["version"],
                    "source": package["source"],
                    "source_version": package.get("source_version", package["version"]),
                    "sha256": package["sha256"],
                    "size": package["size"],
                    "filename": package["filename"],
                }
            rctx.file("%s/%s/BUILD.bazel" % (release, arch), 'package(default_visibility = ["//visibility:public"])\n\n' + "\n".join(aliases))
        data[release] = "struct(\n        archive_state = %s,\n        archs = %s,\n        merged_usr = %s,\n        lock = %s,\n        groups = %s,\n        packages = %s,\n    )" % (
            json.encode(locked["archive_state"]),
            json.encode(locked["archs"]),
            "True" if locked["merged_usr"] else "False",
            json.encode(locked["lock"]),
            json.encode(locked["groups"]),
            json.encode(packages),
        )
    rctx.file("BUILD.bazel", 'exports_files(["releases.bzl"])\n')
    rctx.file("releases.bzl", "\n".join([
        '"""Every locked Debian release as Starlark data (generated by the `debian` module extension)."""',
        "",
        "# The command that re-locks every release (tools/debian/lock_format.json's update_command).",
        "UPDATE_COMMAND = %s" % json.encode(rctx.attr.update_command),
        "",
        "# Release -> struct(archive_state: the lock's snapshot timestamp, or its suites' newest Release date when",
        "# resolved live; archs and merged_usr: the release's; lock: the lock's workspace path; groups: the manifest's package groups, group name -> the",
        "# packages whose closure it stands for; packages: [arch][name] -> version, depends, deb label, sha256, filename, size, and the Debian",
        "# source it is built from with that source's version).",
        "RELEASES = {",
    ] + ["    %s: %s," % (json.encode(release), data[release]) for release in sorted(data)] + ["}", ""]))

deb_hub = repository_rule(
    implementation = _deb_hub_impl,
    doc = "Every release's lock as Starlark data plus one alias per .deb, so BUILD files select packages by name.",
    attrs = {
        "releases_json": attr.string(mandatory = True, doc = "Release -> its packages, groups, archive state and lock path, JSON-encoded."),
        "update_command": attr.string(mandatory = True, doc = "The command that re-locks every release, for messages."),
    },
)
