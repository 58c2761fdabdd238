"""container_structure_test: runs the real container-structure-test binary against an OCI layout."""

def _container_structure_test_impl(ctx):
    image = ctx.files.image[0]
    runner = ctx.actions.declare_file(ctx.label.name + ".sh")
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
    ctx.actions.write(
        runner,
        "#!/bin/sh\nexec %s %s\n" % (
            ctx.executable._runner.short_path,
            " ".join(["'%s'" % argument for argument in arguments]),
        ),
        is_executable = True,
    )
    runfiles = ctx.runfiles(files = [image, ctx.executable._structure_test_binary] + ctx.files.configs)
    runfiles = runfiles.merge(ctx.attr._runner[DefaultInfo].default_runfiles)
    return [
        DefaultInfo(executable = runner, runfiles = runfiles),
        # The command tests start a private dockerd as root (or use DOCKER_HOST's engine): never on a remote
        # worker, whatever tags the caller gives. The result is still cached remotely.
        testing.ExecutionInfo({"no-remote-exec": "1"}),
    ]

container_structure_test = rule(
    implementation = _container_structure_test_impl,
    test = True,
    doc = """Runs container-structure-test with `--image-from-oci-layout`. With the docker driver, the tests use
the engine DOCKER_HOST names, or start a private dockerd for the duration of the test.""",
    attrs = {
        "image": attr.label(mandatory = True, allow_files = True, doc = "An oci_image (a single-image OCI layout)."),
        "configs": attr.label_list(mandatory = True, allow_files = [".yaml", ".yml", ".json"], doc = "Structure test configs (schemaVersion 2.0.0)."),
        "driver": attr.string(default = "docker", values = ["docker", "tar"], doc = "docker runs command tests in a container; tar checks files and metadata only."),
        "_runner": attr.label(default = "//tools/oci:structure_test", executable = True, cfg = "target"),
        "_structure_test_binary": attr.label(default = "@container_structure_test//:container-structure-test", executable = True, allow_single_file = True, cfg = "target"),
    },
)
