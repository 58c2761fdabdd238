"""oci_verify_all: an executable that checks pushed tags against the images built here (tools/oci/verify.py)."""

load(":push.bzl", "OciAttestationsInfo")

def _oci_verify_all_impl(ctx):
    arguments = []
    files = []
    for image, destination in ctx.attr.images.items():
        layout = image[DefaultInfo].files.to_list()[0]
        files.append(layout)
        arguments += ["--image", "%s=%s" % (layout.short_path, destination)]
    for push in ctx.attr.attestations:
        arguments += push[OciAttestationsInfo].arguments
        files += push[OciAttestationsInfo].files
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(
        script,
        "#!/bin/sh\nexec %s %s \"$@\"\n" % (
            ctx.executable._verify.short_path,
            " ".join(["'%s'" % argument for argument in arguments]),
        ),
        is_executable = True,
    )
    runfiles = ctx.runfiles(files = files).merge(ctx.attr._verify[DefaultInfo].default_runfiles)
    return [DefaultInfo(executable = script, runfiles = runfiles)]

oci_verify_all = rule(
    implementation = _oci_verify_all_impl,
    executable = True,
    doc = """`bazel run` builds every image (they are its runfiles), then compares the digest each
REPOSITORY/NAME:TAG serves with the one built here; `-- --repository REGISTRY/PREFIX` (or
DISTROLESS_REPOSITORY) as given to oci_push_all, and `--key cosign.pub` to verify signatures and the
attestations too. Prints a table; exits 1 on any mismatch, missing tag or bad signature.""",
    attrs = {
        "images": attr.label_keyed_string_dict(mandatory = True, allow_files = True, doc = "Image -> 'NAME:TAG[,TAG...]', as oci_push_all's."),
        "attestations": attr.label_list(providers = [OciAttestationsInfo], doc = "oci_push targets whose attestations to expect."),
        "_verify": attr.label(default = "//tools/oci:verify", executable = True, cfg = "target"),
    },
)
