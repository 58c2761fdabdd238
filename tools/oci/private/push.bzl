"""oci_push and oci_push_all: executables that push OCI layouts with crane (tools/oci/push.py), and sign
them and attach their attestations with cosign when given a key."""

OciAttestationsInfo = provider(
    doc = "The attestations an oci_push attaches, for oci_push_all to attach too.",
    fields = {
        "arguments": "list of --attest LAYOUT=TYPE=PREDICATE arguments for tools/oci/push.py",
        "files": "list of the layouts and predicates they name",
    },
)

def _attestations(ctx):
    """--attest arguments and their files from the images, sboms and provenances attributes."""
    images = [image[DefaultInfo].files.to_list()[0] for image in ctx.attr.attest_images]
    arguments = []
    files = list(images)
    for kind, predicates in (("spdxjson", ctx.files.sboms), ("slsaprovenance1", ctx.files.provenances)):
        if predicates and len(predicates) != len(images):
            fail("%s: %d attest_images but %d %s; give one per image" % (ctx.label, len(images), len(predicates), kind))
        for image, predicate in zip(images, predicates):
            arguments += ["--attest", "%s=%s=%s" % (image.short_path, kind, predicate.short_path)]
            files.append(predicate)
    return OciAttestationsInfo(arguments = arguments, files = files)

def _script(ctx, arguments):
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(
        script,
        # Runtime flags ("$@") come last, so -r/--repository and -t/--tag override the rule's values.
        "#!/bin/sh\nexec %s %s \"$@\"\n" % (
            ctx.executable._push.short_path,
            " ".join(["'%s'" % argument for argument in arguments]),
        ),
        is_executable = True,
    )
    return script

def _runfiles(ctx, layouts):
    return ctx.runfiles(files = layouts).merge(ctx.attr._push[DefaultInfo].default_runfiles)

def _oci_push_impl(ctx):
    layout = ctx.files.image[0]
    arguments = ["--layout", layout.short_path]
    if ctx.attr.repository:
        arguments += ["--default-repository", ctx.attr.repository]
    for tag in ctx.attr.remote_tags:
        arguments += ["--default-tag", tag]
    attestations = _attestations(ctx)
    return [
        DefaultInfo(executable = _script(ctx, arguments + attestations.arguments), runfiles = _runfiles(ctx, [layout] + attestations.files)),
        attestations,
    ]

_PUSH_TOOL = attr.label(default = "//tools/oci:push", executable = True, cfg = "target")

oci_push = rule(
    implementation = _oci_push_impl,
    executable = True,
    doc = """`bazel run` pushes the image (or index) by digest, then sets its tags.
Flags after `--`: `-r/--repository` and `-t/--tag` (repeatable) replace the attributes; `--key` (or
COSIGN_KEY, password in COSIGN_PASSWORD) signs the image and every image in it by digest, and attaches the
attestations, before the tags move.""",
    attrs = {
        "image": attr.label(mandatory = True, allow_files = True, doc = "An oci_image or oci_image_index."),
        "repository": attr.string(doc = "Repository to push to, e.g. 127.0.0.1:5000/distroless/python; may be given at run time instead."),
        "remote_tags": attr.string_list(doc = "Tags to point at the pushed digest."),
        "attest_images": attr.label_list(allow_files = True, doc = "The images (the index's, or `image` itself) that `sboms` and `provenances` describe, in the same order."),
        "sboms": attr.label_list(allow_files = True, doc = "One SPDX JSON SBOM per `attest_images` entry, attached as a cosign `spdxjson` attestation to it and to the index."),
        "provenances": attr.label_list(allow_files = True, doc = "One SLSA v1 provenance predicate per `attest_images` entry, attached as `slsaprovenance1`."),
        "_push": _PUSH_TOOL,
    },
)

def _oci_push_all_impl(ctx):
    arguments = []
    layouts = []
    for image, destination in ctx.attr.images.items():
        layout = image[DefaultInfo].files.to_list()[0]
        layouts.append(layout)
        arguments += ["--image", "%s=%s" % (layout.short_path, destination)]
    for push in ctx.attr.attestations:
        arguments += push[OciAttestationsInfo].arguments
        layouts += push[OciAttestationsInfo].files
    return [DefaultInfo(executable = _script(ctx, arguments), runfiles = _runfiles(ctx, layouts))]

oci_push_all = rule(
    implementation = _oci_push_all_impl,
    executable = True,
    doc = """`bazel run` pushes every image to REPOSITORY/NAME:TAG, REPOSITORY given at run time as
`-- --repository REGISTRY/PREFIX` or by the DISTROLESS_REPOSITORY environment variable; `--key` signs and
attests as oci_push does.""",
    attrs = {
        "images": attr.label_keyed_string_dict(mandatory = True, allow_files = True, doc = "Image -> 'NAME:TAG[,TAG...]'."),
        "attestations": attr.label_list(providers = [OciAttestationsInfo], doc = "oci_push targets whose attestations to attach too."),
        "_push": _PUSH_TOOL,
    },
)
