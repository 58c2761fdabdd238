"""oci_verify_all: an executable that checks pushed tags against the images built here (tools/oci/verify.py)."""

load("//tools/private:docs.bzl", "rule_doc")
load("//tools/private:launcher.bzl", "expand_launcher", "launcher_attr")
load(":attestations.bzl", "OciAttestationsInfo")
load(":push.bzl", "image_arguments")

_VERIFY_ALL_DOC = rule_doc(
    summary = """Checks that a registry serves the images this checkout builds: `bazel run` it.""",
    behavior = """
`bazel run` builds every image first (they are the launcher's runfiles), then asks the registry, with crane,
for the digest of each REPOSITORY/NAME:TAG and compares it with the digest built here. With a cosign public
key it also verifies, for each pushed digest, the key's signature and that the attested SBOMs and provenance
match the rebuilt ones. It prints a table (tag, pushed digest, rebuilt digest, signature, verdict) and exits
1 when any tag is not `OK`, 2 when the check cannot run (bad repository, unreachable registry, missing key).
""",
    usage = """
`-- --repository REGISTRY/PREFIX` (or `DISTROLESS_REPOSITORY`), the prefix given to oci_push_all, and
optionally `--key cosign.pub`.
""",
    examples = """
```starlark
oci_verify_all(
    name = "verify",
    images = {"//python:3.13": "python:3.13,latest"},
)
```

`bazel run //:verify -- --repository 127.0.0.1:5000/distroless --key cosign.pub`
""",
)

def _oci_verify_all_impl(ctx):
    arguments, files = image_arguments(ctx)
    script = expand_launcher(ctx, {"{{verify}}": [ctx.executable._verify.short_path], "{{arguments}}": arguments})
    runfiles = ctx.runfiles(files = files).merge(ctx.attr._verify[DefaultInfo].default_runfiles)
    return [DefaultInfo(executable = script, runfiles = runfiles)]

oci_verify_all = rule(
    implementation = _oci_verify_all_impl,
    executable = True,
    doc = _VERIFY_ALL_DOC,
    attrs = {
        "images": attr.label_keyed_string_dict(mandatory = True, allow_files = True, doc = "Image -> 'NAME:TAG[,TAG...]', as oci_push_all's."),
        "attestations": attr.label_list(providers = [OciAttestationsInfo], doc = "oci_push targets whose attestations to expect, besides those the images carry."),
        "_launcher": launcher_attr("//tools/oci/private:verify.sh.tpl"),
        "_verify": attr.label(default = "//tools/oci:verify", executable = True, cfg = "target"),
    },
)
