"""oci_load: `bazel run` loads an image into the local Docker engine under its tags."""

def _oci_load_impl(ctx):
    archive = ctx.actions.declare_file(ctx.label.name + ".tar")
    args = ctx.actions.args()
    args.add("--layout", ctx.files.image[0].path)
    args.add("--output", archive)
    for tag in ctx.attr.repo_tags:
        args.add("--tag", tag)
    ctx.actions.run(
        executable = ctx.executable._docker_archive,
        arguments = [args],
        inputs = ctx.files.image,
        outputs = [archive],
        mnemonic = "DockerArchive",
        progress_message = "Writing docker-archive %{output}",
    )
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(
        script,
        # Docker's CLI picks the engine: DOCKER_HOST, else its default socket.
        "#!/bin/sh\nexec docker load --input '%s' \"$@\"\n" % archive.short_path,
        is_executable = True,
    )
    return [DefaultInfo(executable = script, runfiles = ctx.runfiles(files = [archive]), files = depset([archive]))]

oci_load = rule(
    implementation = _oci_load_impl,
    executable = True,
    doc = "Writes a docker-archive tarball of the image (what `docker load` reads) and, run, loads it.",
    attrs = {
        "image": attr.label(mandatory = True, allow_files = True, doc = "An oci_image."),
        "repo_tags": attr.string_list(mandatory = True, doc = "REPOSITORY:TAG names the loaded image gets."),
        "_docker_archive": attr.label(default = "//tools/oci:docker_archive", executable = True, cfg = "exec"),
    },
)
