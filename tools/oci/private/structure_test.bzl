"""container_structure_test: runs the real container-structure-test binary against an OCI layout."""

load("//tools/private:docs.bzl", "rule_doc")
load("//tools/private:launcher.bzl", "expand_launcher", "launcher_attr")

_DOC = rule_doc(
    summary = """Tests an image with container-structure-test (`--image-from-oci-layout`): `bazel test` it.""",
    behavior = """
The launcher runs tools/oci/structure_test.py, which runs container-structure-test with every config.
With the `docker` driver, command tests run in a real engine: the one `DOCKER_HOST` names, or else a
private `dockerd` the test starts as root (its own data root, exec root and socket in a temporary
directory) and stops. An image of another architecture than the machine's gets its private engine in a
namespace with its own binfmt_misc, where qemu runs its programs (tools/oci/binfmt_namespace.py). Without
root and without `DOCKER_HOST`, the test fails and says so; it never skips. The `tar` driver checks files
and metadata only. The test never runs on a remote worker (its result may still be cached remotely).
""",
    usage = """
`bazel test //python:3.13_amd64_test`; with `DOCKER_HOST` set (the project's .bazelrc passes it to tests),
the test uses that engine instead of starting its own.
""",
    examples = """
```starlark
container_structure_test(
    name = "image_test",
    image = ":image_amd64",
    configs = ["tests/python.yaml"],
)
```
""",
)

def _container_structure_test_impl(ctx):
    image = ctx.file.image
    arguments = [
        "--binary",
        ctx.executable._structure_test_binary.short_path,
        "--image",
        image.short_path,
        "--driver",
        ctx.attr.driver,
    ]
    for config in ctx.files.configs:
        arguments += ["--config", config.short_path]
    launcher = expand_launcher(ctx, {"{{runner}}": [ctx.executable._runner.short_path], "{{arguments}}": arguments})
    runfiles = ctx.runfiles(files = [image, ctx.executable._structure_test_binary] + ctx.files.configs)
    runfiles = runfiles.merge(ctx.attr._runner[DefaultInfo].default_runfiles)
    return [
        DefaultInfo(executable = launcher, runfiles = runfiles),
        # The command tests start a private dockerd as root (or use DOCKER_HOST's engine): never on a remote
        # worker, whatever tags the caller gives. The result is still cached remotely.
        testing.ExecutionInfo({"no-remote-exec": "1"}),
    ]

container_structure_test = rule(
    implementation = _container_structure_test_impl,
    test = True,
    doc = _DOC,
    attrs = {
        "image": attr.label(mandatory = True, allow_single_file = True, doc = "An oci_image (a single-image OCI layout)."),
        "configs": attr.label_list(mandatory = True, allow_files = [".yaml", ".yml", ".json"], doc = "Structure test configs (schemaVersion 2.0.0)."),
        "driver": attr.string(default = "docker", values = ["docker", "tar"], doc = "docker runs command tests in a container; tar checks files and metadata only."),
        "_launcher": launcher_attr("//tools/oci/private:structure_test.sh.tpl"),
        "_runner": attr.label(default = "//tools/oci:structure_test", executable = True, cfg = "target"),
        "_structure_test_binary": attr.label(default = "@container_structure_test//:container-structure-test", executable = True, allow_single_file = True, cfg = "target"),
    },
)
