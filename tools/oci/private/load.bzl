"""oci_load: `bazel run` loads an image into the local Docker engine under its tags."""

load("//tools/private:docs.bzl", "rule_doc")
load("//tools/private:launcher.bzl", "expand_launcher", "launcher_attr")

_DOC = rule_doc(
    summary = """Writes a docker-archive tarball of an image (what `docker load` reads); `bazel run` loads it.""",
    behavior = """
Building the target writes `NAME.tar`: the image's config and layers as `docker save` would write them,
with `repo_tags` in its manifest, deterministic like every tar this project writes. zstd layers are
stored decompressed, since Docker before 23 loads only gzip or plain ones. Running the target calls
`docker load --input NAME.tar`; Docker's CLI picks the engine (`DOCKER_HOST`, else its default socket).
""",
    usage = """
Flags after `--` go to `docker load`, e.g. `bazel run //python:3.13_load -- --quiet`.
""",
    examples = """
```starlark
oci_load(
    name = "load",
    image = ":image_amd64",
    repo_tags = ["distroless/python:3.13"],
)
```

`bazel run //:load`, then `docker run --rm distroless/python:3.13 -c 'print(1)'`.
""",
)

def docker_archive(ctx, tags):
    """Writes NAME.tar, the docker-archive of ctx.file.image loaded as `tags`, with ctx.executable._docker_archive."""
    archive = ctx.actions.declare_file(ctx.label.name + ".tar")
    args = ctx.actions.args()
    args.add("--layout", ctx.file.image.path)
    args.add("--output", archive)
    for tag in tags:
        args.add("--tag", tag)
    ctx.actions.run(
        executable = ctx.executable._docker_archive,
        arguments = [args],
        inputs = [ctx.file.image],
        outputs = [archive],
        mnemonic = "DockerArchive",
        progress_message = "Writing docker-archive %{output}",
    )
    return archive

def _oci_load_impl(ctx):
    archive = docker_archive(ctx, ctx.attr.repo_tags)
    launcher = expand_launcher(ctx, {"{{archive}}": [archive.short_path]})
    return [DefaultInfo(executable = launcher, runfiles = ctx.runfiles(files = [archive]), files = depset([archive]))]

oci_load = rule(
    implementation = _oci_load_impl,
    executable = True,
    doc = _DOC,
    attrs = {
        "image": attr.label(mandatory = True, allow_single_file = True, doc = "An oci_image, or an index holding one image."),
        "repo_tags": attr.string_list(mandatory = True, doc = "REPOSITORY:TAG names the loaded image gets."),
        "_docker_archive": attr.label(default = "//tools/oci:docker_archive", executable = True, cfg = "exec"),
        "_launcher": launcher_attr("//tools/oci/private:load.sh.tpl"),
    },
)
