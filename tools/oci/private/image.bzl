"""oci_image and oci_image_index: OCI image layouts written by tools/oci/build_layout.py."""

load("//tools/private:docs.bzl", "rule_doc")
load(":attestations.bzl", "PROVENANCE_TYPE", "SBOM_TYPE", "attest", "attestations_of")

def _key_values(flag, pairs):
    return [("%s=%s=%s" % (flag, key, value)) for key, value in sorted(pairs.items())]

def _oci_image_impl(ctx):
    out = ctx.actions.declare_directory(ctx.label.name)
    args = ctx.actions.args()
    args.add("image")
    args.add("--output", out.path)
    inputs = list(ctx.files.tars)
    if ctx.file.base:
        args.add("--base", ctx.file.base.path)
        inputs.append(ctx.file.base)
    for tar in ctx.files.tars:
        args.add("--layer", tar)
    if ctx.attr.entrypoint:
        args.add("--entrypoint", json.encode(ctx.attr.entrypoint))
    if ctx.attr.cmd:
        args.add("--cmd", json.encode(ctx.attr.cmd))
    args.add_all(["--env=%s=%s" % (k, v) for k, v in sorted(ctx.attr.env.items())])
    if ctx.attr.user:
        args.add("--user", ctx.attr.user)
    if ctx.attr.workdir:
        args.add("--workdir", ctx.attr.workdir)
    args.add_all(["--label=%s=%s" % (k, v) for k, v in sorted(ctx.attr.labels.items())])
    args.add_all(["--annotation=%s=%s" % (k, v) for k, v in sorted(ctx.attr.annotations.items())])
    # The platform defaults to the base image's; without a base, to linux/amd64.
    for flag, value in [("--os", ctx.attr.os), ("--architecture", ctx.attr.architecture), ("--variant", ctx.attr.variant)]:
        if value:
            args.add(flag, value)
    args.add("--created", ctx.attr.created)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = inputs,
        outputs = [out],
        mnemonic = "OciImage",
        progress_message = "Writing OCI image layout %{output}",
    )
    predicates = [(kind, file) for kind, file in [(SBOM_TYPE, ctx.file.sbom), (PROVENANCE_TYPE, ctx.file.provenance)] if file]
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out])), attest(out, predicates)]

_IMAGE_DOC = rule_doc(
    summary = """An OCI image layout directory (oci-layout, index.json, blobs/sha256/...) of one image, built
from tar layers by tools/oci/build_layout.py.""",
    behavior = """
The image is `base`'s layers (if any) followed by `tars`, each stored as it is (plain, gzip or zstd: the
media type follows the compression). The config starts from the base's: `env` and `labels` are merged over
it by name, `entrypoint` without `cmd` clears the base's cmd, and the platform is the base's unless given
(asking for another platform than the base's is an error). Everything is written canonically with a fixed
`created` time, so the same inputs give the same digests on any machine.
""",
    usage = """
Build it; give it to oci_image_index, oci_load, oci_push or container_structure_test. Its `sbom` and
`provenance` are not part of the image: the push rules attach them, as cosign attestations, to the image and
to every index that holds it, and oci_verify_all expects them there.
""",
    examples = """
```starlark
oci_image(
    name = "app_amd64",
    base = "//python:3.13_amd64_nonroot",
    tars = [":app_layer"],
    entrypoint = ["/usr/bin/python3", "-m", "app"],
    env = {"PYTHONPATH": "/app"},
    sbom = ":app_amd64_sbom",
)
```
""",
)

oci_image = rule(
    implementation = _oci_image_impl,
    doc = _IMAGE_DOC,
    attrs = {
        "base": attr.label(allow_single_file = True, doc = "An oci_image to build on; its layers come first and its config is the starting point."),
        "tars": attr.label_list(allow_files = [".tar", ".tar.gz", ".tgz", ".tar.zst"], doc = "Layers, in order, as tar files (plain, gzip or zstd)."),
        "entrypoint": attr.string_list(doc = "The container's entrypoint. Setting it without `cmd` clears the base image's cmd."),
        "cmd": attr.string_list(doc = "Default arguments to the entrypoint."),
        "env": attr.string_dict(doc = "Environment variables, merged over the base image's by name."),
        "user": attr.string(doc = "The user (name or uid[:gid]) the container runs as."),
        "workdir": attr.string(doc = "The working directory of the container's process."),
        "labels": attr.string_dict(doc = "Config labels, merged over the base image's."),
        "annotations": attr.string_dict(doc = "Manifest annotations."),
        "os": attr.string(doc = "The operating system the image runs on; default: the base's, else linux."),
        "architecture": attr.string(doc = "The CPU architecture (GOARCH names: amd64, arm64); default: the base's, else amd64."),
        "variant": attr.string(doc = "The CPU variant, e.g. v8 for arm64; default: the base's."),
        "created": attr.string(default = "1970-01-01T00:00:00Z", doc = "The creation time recorded in the config; fixed so builds are reproducible."),
        "sbom": attr.label(allow_single_file = True, doc = "The image's SPDX JSON SBOM, attested as `spdxjson` when the image (or an index of it) is pushed with a key."),
        "provenance": attr.label(allow_single_file = True, doc = "The image's SLSA v1 provenance predicate, attested as `slsaprovenance1`."),
        "_tool": attr.label(default = "//tools/oci:build_layout", executable = True, cfg = "exec"),
    },
)

def _oci_image_index_impl(ctx):
    out = ctx.actions.declare_directory(ctx.label.name)
    args = ctx.actions.args()
    args.add("index")
    args.add("--output", out.path)
    for image in ctx.files.images:
        args.add("--image", image.path)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = ctx.files.images,
        outputs = [out],
        mnemonic = "OciIndex",
        progress_message = "Writing OCI image index %{output}",
    )
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out])), attestations_of(ctx.attr.images)]

_INDEX_DOC = rule_doc(
    summary = """A multi-platform OCI image index layout over per-architecture oci_image targets.""",
    behavior = """
`index.json` points at one nested image index, which lists each image's manifest with the platform read
from its config (as rules_oci's oci_image_index does). The images' blobs are copied in, checked against
their digests. The index carries its images' attestations (their `sbom` and `provenance`) for the push
rules.
""",
    usage = """
Build it; push it with oci_push, and a client pulls the image for its own platform.
""",
    examples = """
```starlark
oci_image_index(
    name = "app",
    images = [":app_amd64", ":app_arm64"],
)
```
""",
)

oci_image_index = rule(
    implementation = _oci_image_index_impl,
    doc = _INDEX_DOC,
    attrs = {
        "images": attr.label_list(mandatory = True, allow_files = True, doc = "The oci_image targets, one per platform."),
        "_tool": attr.label(default = "//tools/oci:build_layout", executable = True, cfg = "exec"),
    },
)
