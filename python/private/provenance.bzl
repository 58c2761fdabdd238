"""slsa_provenance: an image's SLSA provenance v1 predicate (tools/oci/provenance.py), which :push attests."""

load("//python:config.bzl", "SOURCE_URL")

StampInfo = provider(doc = "Whether the build stamps (--stamp).", fields = {"stamp": "bool"})

def _stamp_setting_impl(ctx):
    return [StampInfo(stamp = ctx.attr.stamp)]

# A rule's private attribute cannot be a select(), so one target carries `--stamp` for every predicate.
stamp_setting = rule(
    implementation = _stamp_setting_impl,
    attrs = {"stamp": attr.bool(mandatory = True, doc = "select() on a config_setting of --stamp.")},
)

def _slsa_provenance_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".slsa.json")
    args = ctx.actions.args()
    args.add("--target", ctx.attr.target)
    args.add("--source", ctx.file._source)
    args.add("--build-root-packages", ctx.file._build_root_packages)
    if SOURCE_URL:
        args.add("--source-url", SOURCE_URL)
    inputs = [ctx.file._source, ctx.file._build_root_packages] + ctx.files.dependencies
    if ctx.attr._stamp[StampInfo].stamp:
        # Only with --stamp: the predicate then records when the build started.
        args.add("--volatile-status", ctx.version_file)
        inputs.append(ctx.version_file)
    args.add("--output", out)
    args.add_all(ctx.files.dependencies)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = inputs,
        outputs = [out],
        mnemonic = "SlsaProvenance",
        progress_message = "Writing the provenance of %s" % ctx.attr.target,
    )
    return [DefaultInfo(files = depset([out]))]

slsa_provenance = rule(
    implementation = _slsa_provenance_impl,
    doc = """The SLSA provenance v1 predicate of an image target: the build command, the source commit
(@source_commit), the lock files it is built from with their sha256, and the builder (tools/bazel, its
Bazel version and build root). Deterministic unless built with --stamp.""",
    attrs = {
        "target": attr.string(mandatory = True, doc = "The image's label, e.g. //python:3.13_amd64."),
        "dependencies": attr.label_list(allow_files = True, mandatory = True, doc = "The files the image is resolved from: its release's lock.json and manifest.yaml."),
        "_source": attr.label(default = "@source_commit//:source.json", allow_single_file = True),
        "_build_root_packages": attr.label(default = "//tools:build_root.packages", allow_single_file = True),
        "_stamp": attr.label(default = "//python/private:stamp", providers = [StampInfo]),
        "_tool": attr.label(default = "//tools/oci:provenance", executable = True, cfg = "exec"),
    },
)
