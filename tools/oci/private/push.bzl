"""oci_push and oci_push_all: executables that push OCI layouts with crane (tools/oci/push.py)."""

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
    return [DefaultInfo(executable = _script(ctx, arguments), runfiles = _runfiles(ctx, [layout]))]

_PUSH_TOOL = attr.label(default = "//tools/oci:push", executable = True, cfg = "target")

oci_push = rule(
    implementation = _oci_push_impl,
    executable = True,
    doc = """`bazel run` pushes the image (or index) by digest, then sets its tags.
Flags after `--`: `-r/--repository` and `-t/--tag` (repeatable) replace the attributes.""",
    attrs = {
        "image": attr.label(mandatory = True, allow_files = True, doc = "An oci_image or oci_image_index."),
        "repository": attr.string(doc = "Repository to push to, e.g. 127.0.0.1:5000/distroless/python; may be given at run time instead."),
        "remote_tags": attr.string_list(doc = "Tags to point at the pushed digest."),
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
    return [DefaultInfo(executable = _script(ctx, arguments), runfiles = _runfiles(ctx, layouts))]

oci_push_all = rule(
    implementation = _oci_push_all_impl,
    executable = True,
    doc = """`bazel run` pushes every image to REPOSITORY/NAME:TAG, REPOSITORY given at run time as
`-- --repository REGISTRY/PREFIX` or by the DISTROLESS_REPOSITORY environment variable.""",
    attrs = {
        "images": attr.label_keyed_string_dict(mandatory = True, allow_files = True, doc = "Image -> 'NAME:TAG[,TAG...]'."),
        "_push": _PUSH_TOOL,
    },
)
