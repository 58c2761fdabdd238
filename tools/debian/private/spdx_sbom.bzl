"""spdx_sbom: an image's SPDX 2.3 JSON SBOM, made from the .debs it is built from (tools/debian/spdx_sbom.py).

The SBOM's pieces live together here: this rule, its tool (tools/debian/spdx_sbom.py) and the validator its
tests run (spdx_tools.bzl beside this file, pyspdxtools).
"""

def _spdx_sbom_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".spdx.json")
    args = ctx.actions.args()
    args.add("--name", ctx.attr.image_name)
    args.add("--architecture", ctx.attr.architecture)
    args.add("--distribution", ctx.attr.distribution)
    args.add("--image-license", ctx.attr.image_license)
    args.add("--output", out)
    args.add_all(ctx.files.debs)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = ctx.files.debs,
        outputs = [out],
        mnemonic = "SpdxSbom",
        progress_message = "Describing %d .debs in %%{output}" % len(ctx.files.debs),
    )
    return [DefaultInfo(files = depset([out]))]

spdx_sbom = rule(
    implementation = _spdx_sbom_impl,
    doc = """The SPDX 2.3 JSON SBOM of an image: one package per .deb, with its version, architecture, sha256,
purl and, where its copyright file is machine-readable (DEP-5), its licence. Deterministic.""",
    attrs = {
        "debs": attr.label_list(allow_files = [".deb"], mandatory = True, doc = "Every .deb the image holds."),
        "image_name": attr.string(mandatory = True, doc = "The image's name and tag, e.g. distroless/python:3.13-debug."),
        "architecture": attr.string(mandatory = True, doc = "The image's architecture, e.g. amd64."),
        "distribution": attr.string(mandatory = True, doc = "The Debian release the purls name, e.g. trixie."),
        "image_license": attr.string(mandatory = True, doc = "The image's own licence, an SPDX expression."),
        "_tool": attr.label(default = "//tools/debian:spdx_sbom", executable = True, cfg = "exec"),
    },
)
