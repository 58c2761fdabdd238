"""The deb_layer rule and the closure helper used by the image macros."""

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

deb_layer = rule(
    implementation = _deb_layer_impl,
    doc = """One deterministic tar layer holding the contents of some .debs, plus the
/var/lib/dpkg/status.d/<package> and .md5sums files vulnerability scanners read.""",
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
            fail("package '%s' is not in the lock; add it to the manifest and run `tools/bazel run //debian_packages:update`" % name)
        seen[name] = True
        queue.extend([dep for dep in packages[name]["depends"] if dep not in seen and dep not in exclude])
    return sorted(seen.keys())
