"""The deb_layer rule and the closure helper used by the image macros."""

load("//tools/private:docs.bzl", "rule_doc")

def _deb_layer_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + (".tar.zst" if ctx.attr.compression == "zstd" else ".tar.gz"))
    args = ctx.actions.args()
    args.add("--output", out)
    args.add("--compression", ctx.attr.compression)
    if ctx.attr.merged_usr:
        args.add("--merged-usr")
    if ctx.attr.keep_docs:
        args.add("--keep-docs")
    args.add_all(ctx.files.debs)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = ctx.files.debs,
        outputs = [out],
        mnemonic = "DebLayer",
        progress_message = "Unpacking %d .debs into %%{output}" % len(ctx.files.debs),
    )
    return [DefaultInfo(files = depset([out]))]

_DEB_LAYER_DOC = rule_doc(
    summary = """One deterministic tar layer holding the contents of some .debs: `NAME.tar.gz` (or `.tar.zst`).""",
    behavior = """
The .debs are unpacked in order (a later one wins on an equal path) by tools/debian/deb_to_layer.py, the way
distroless installs packages: no maintainer script runs. What dpkg would record goes to
`/var/lib/dpkg/status.d/<package>` and `<package>.md5sums`, so image scanners find the packages. Files keep
the mtime their .deb records; documentation, man and info pages are dropped unless `keep_docs`, copyright
files always stay. With `merged_usr`, `/bin`, `/sbin` and `/lib*` move under `/usr` and become symlinks.
A .deb that cannot be read, or a member that cannot be kept (a device, a set-id file not owned by root), is
an error naming the .deb.
""",
    usage = """
Take the .debs from the releases' hub (`@debian_releases//<release>/<arch>:<package>`); deb_closure lists a package group
with everything it depends on. The images make one deb_layer per Debian source package
(python/private/source_layers.bzl).
""",
    examples = """
```starlark
deb_layer(
    name = "3.13_amd64_src_glibc",
    debs = [
        "@debian_releases//trixie/amd64:libc6",
        "@debian_releases//trixie/amd64:libc-bin",
    ],
    merged_usr = True,
)
```
""",
)

deb_layer = rule(
    implementation = _deb_layer_impl,
    doc = _DEB_LAYER_DOC,
    attrs = {
        "debs": attr.label_list(allow_files = [".deb"], mandatory = True, doc = "The .deb files, in the order they are unpacked."),
        "compression": attr.string(default = "gzip", values = ["gzip", "zstd"], doc = "Layer compression."),
        "merged_usr": attr.bool(default = False, doc = "Move /bin, /sbin and /lib* under /usr and emit the symlinks (bookworm and later)."),
        "keep_docs": attr.bool(default = False, doc = "Keep documentation, man and info pages; copyright files are always kept."),
        "_tool": attr.label(default = "//tools/debian:deb_to_layer", executable = True, cfg = "exec"),
    },
)

def deb_closure(packages, roots, exclude = []):
    """The names of `roots` and everything they depend on, per one release's packages of one architecture.

    Args:
      packages: RELEASES[release].packages[arch] from @debian_releases//:releases.bzl.
      roots: package names to start from.
      exclude: names to leave out, with everything only they pull in.

    Returns:
      Sorted package names.
    """
    seen = {}
    queue = [name for name in roots if name not in exclude]

    # Starlark has no while loop; the queue empties long before this bound.
    for _ in range(1000000):
        if not queue:
            break
        name = queue.pop(0)
        if name in seen:
            continue
        if name not in packages:
            fail("package '%s' has no entry in the release's lock for this architecture; name it in a group of the release's manifest.yaml and re-lock it with the update command (README, \"Debian packages\")" % name)
        seen[name] = True
        queue.extend([dep for dep in packages[name]["depends"] if dep not in seen and dep not in exclude])
    return sorted(seen.keys())
