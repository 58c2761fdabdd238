"""oci_push and oci_push_all: executables that push OCI layouts with crane (tools/oci/push.py), and sign
them and attach their attestations with cosign when given a key."""

load("//tools/private:docs.bzl", "rule_doc")
load("//tools/private:launcher.bzl", "expand_launcher", "launcher_attr")
load(":attestations.bzl", "OciAttestationsInfo", "PROVENANCE_TYPE", "SBOM_TYPE", "attestations_of", "merge")

_PUSH_DOC = rule_doc(
    summary = """Pushes an oci_image or oci_image_index to a registry: `bazel run` it.""",
    behavior = """
The image (or index) is pushed by digest first, every blob and manifest in it, and only then are the tags
set, one after the other, with crane (tools/oci/push.py). A tag therefore only ever names an image the
registry holds completely; an interrupted push changes no tag and can be run again (blobs the registry
has are skipped). Any failure exits non-zero and skips the remaining steps.

With a cosign key (`--key`, or `COSIGN_KEY` with its password in `COSIGN_PASSWORD`), the index and every
image in it are signed by digest, and the images' SBOMs and provenance are attached to their images (and
to the index) as cosign attestations, before any tag moves: those the image targets carry (oci_image's
`sbom` and `provenance`), and any given here with `attest_images`. Nothing goes to a transparency log.
Credentials come from the user's docker config, as crane and cosign read them.
""",
    usage = """
Flags after `--` come after the rule's own, so they replace its values:

1. `-r/--repository REGISTRY/REPOSITORY` replaces `repository` (needed when it is not set), e.g.
   `bazel run //python:3.13_push -- --repository 127.0.0.1:5000/distroless/python`.
2. `-t/--tag TAG` (repeatable) replaces `remote_tags`. A tag written `TAG!` (here or in `remote_tags`) is
   immutable: it is set only where the registry has no such tag or it already names the pushed digest;
   otherwise the push stops before anything is pushed.
3. `--key cosign.key` signs and attests.
""",
    examples = """
```starlark
oci_push(
    name = "push",
    image = ":image",  # an oci_image_index
    repository = "127.0.0.1:5000/distroless/python",
    remote_tags = ["3.13", "latest"],
)
```

The images' own `sbom` and `provenance` are attested; for images built without them, name them here:

```starlark
oci_push(
    name = "push_app",
    image = ":app",
    attest_images = [":app_amd64"],
    sboms = [":app_amd64_sbom"],
)
```
""",
)

_PUSH_ALL_DOC = rule_doc(
    summary = """Pushes several images in one `bazel run`, each to REPOSITORY/NAME:TAG.""",
    behavior = """
Each image is pushed as oci_push pushes one: by digest first, tags last, signed and attested with `--key`
(the attestations are those the image targets carry, and those of the `attestations` oci_push targets).
""",
    usage = """
REPOSITORY is given at run time, `-- --repository REGISTRY/PREFIX`, or by the `DISTROLESS_REPOSITORY`
environment variable; `--key` as for oci_push.
""",
    examples = """
```starlark
oci_push_all(
    name = "push",
    images = {
        "//python:3.13": "python:3.13,latest",
        "//python:3.13-debug": "python:3.13-debug,latest-debug",
    },
)
```

`bazel run //:push -- --repository 127.0.0.1:5000/distroless`.
""",
)

def _attestations(ctx):
    """--attest arguments and their files from the images, sboms and provenances attributes."""
    images = [image[DefaultInfo].files.to_list()[0] for image in ctx.attr.attest_images]
    arguments = []
    files = list(images)
    for kind, predicates in ((SBOM_TYPE, ctx.files.sboms), (PROVENANCE_TYPE, ctx.files.provenances)):
        if predicates and len(predicates) != len(images):
            fail("%s: %d attest_images but %d %s; give one per image" % (ctx.label, len(images), len(predicates), kind))
        for image, predicate in zip(images, predicates):
            arguments += ["--attest", "%s=%s=%s" % (image.short_path, kind, predicate.short_path)]
            files.append(predicate)
    return OciAttestationsInfo(arguments = arguments, files = files)

def _script(ctx, arguments):
    return expand_launcher(ctx, {"{{push}}": [ctx.executable._push.short_path], "{{arguments}}": arguments})

def _runfiles(ctx, layouts):
    return ctx.runfiles(files = layouts).merge(ctx.attr._push[DefaultInfo].default_runfiles)

def _oci_push_impl(ctx):
    layout = ctx.file.image
    arguments = ["--layout", layout.short_path]
    if ctx.attr.repository:
        arguments += ["--default-repository", ctx.attr.repository]
    for tag in ctx.attr.remote_tags:
        arguments += ["--default-tag", tag]
    attestations = merge([attestations_of([ctx.attr.image]), _attestations(ctx)])
    return [
        DefaultInfo(executable = _script(ctx, arguments + attestations.arguments), runfiles = _runfiles(ctx, [layout] + attestations.files)),
        attestations,
    ]

_PUSH_TOOL = attr.label(default = "//tools/oci:push", executable = True, cfg = "target")
_LAUNCHER = launcher_attr("//tools/oci/private:push.sh.tpl")

oci_push = rule(
    implementation = _oci_push_impl,
    executable = True,
    doc = _PUSH_DOC,
    attrs = {
        "image": attr.label(mandatory = True, allow_single_file = True, doc = "An oci_image or oci_image_index."),
        "repository": attr.string(doc = "Repository to push to, e.g. 127.0.0.1:5000/distroless/python; may be given at run time instead."),
        "remote_tags": attr.string_list(doc = "Tags to point at the pushed digest."),
        "attest_images": attr.label_list(allow_files = True, doc = "Images (the index's, or `image` itself) that `sboms` and `provenances` describe, in the same order, for images that do not carry their own (oci_image's `sbom` and `provenance`)."),
        "sboms": attr.label_list(allow_files = True, doc = "One SPDX JSON SBOM per `attest_images` entry, attached as a cosign `spdxjson` attestation to it and to the index."),
        "provenances": attr.label_list(allow_files = True, doc = "One SLSA v1 provenance predicate per `attest_images` entry, attached as `slsaprovenance1`."),
        "_launcher": _LAUNCHER,
        "_push": _PUSH_TOOL,
    },
)

def image_arguments(ctx):
    """--image LAYOUT=NAME:TAGS and --attest arguments, and their files, from `images` and `attestations`.

    The attestations are those the images carry and those of the `attestations` targets, each once.

    Shared by oci_push_all and oci_verify_all, which take the same two attributes.
    """
    arguments = []
    files = []
    for image, destination in ctx.attr.images.items():
        layout = image[DefaultInfo].files.to_list()[0]
        files.append(layout)
        arguments += ["--image", "%s=%s" % (layout.short_path, destination)]
    attestations = merge([attestations_of(ctx.attr.images.keys()), attestations_of(ctx.attr.attestations)])
    return arguments + attestations.arguments, files + [file for file in attestations.files if file not in files]

def _oci_push_all_impl(ctx):
    arguments, layouts = image_arguments(ctx)
    return [DefaultInfo(executable = _script(ctx, arguments), runfiles = _runfiles(ctx, layouts))]

oci_push_all = rule(
    implementation = _oci_push_all_impl,
    executable = True,
    doc = _PUSH_ALL_DOC,
    attrs = {
        "images": attr.label_keyed_string_dict(mandatory = True, allow_files = True, doc = "Image -> 'NAME:TAG[,TAG...]'."),
        "attestations": attr.label_list(providers = [OciAttestationsInfo], doc = "oci_push targets whose attestations to attach too, besides those the images carry."),
        "_launcher": _LAUNCHER,
        "_push": _PUSH_TOOL,
    },
)
