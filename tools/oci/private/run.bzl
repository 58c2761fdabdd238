"""oci_run: `bazel run` runs an image in a container engine, the one DOCKER_HOST names or a private one."""

load(":load.bzl", "docker_archive")
load("//tools/private:docs.bzl", "rule_doc")
load("//tools/private:launcher.bzl", "expand_launcher", "launcher_attr")

_DOC = rule_doc(
    summary = """Runs an image: `bazel run` loads it into an engine and `docker run`s it with your arguments.""",
    behavior = """
Building the target writes the image as a docker-archive (as oci_load does). Running it (tools/oci/run.py)
uses the engine DOCKER_HOST names, else starts the private dockerd the structure tests use (root, in the
build root; an image of another architecture runs under qemu there) and stops it afterwards. The
container's exit status is the run's. `--publish PORT` makes a server in the container reachable on the
machine's 127.0.0.1:PORT: DOCKER_HOST's engine publishes it (`-p 127.0.0.1:PORT:PORT`); the private engine
runs the container on the machine's network (`--network=host`, same port on both sides), or, for an
emulated image, on the network namespace that engine has to itself, with the launcher relaying the machine's
port into it. Without it the private engine's containers have no network.
""",
    usage = """
Arguments after `--` go to the container, e.g. `tools/bazel run //python:3.13_run -- -c 'print(1)'`, after
the run's own options, which come first and end at the first other argument or a `--`:
`tools/bazel run //examples/hello_service:hello_service_run -- --publish 8080 -- --port 8080`.
""",
    examples = """
```starlark
oci_run(
    name = "image_run",
    image = ":image_amd64",
)
```
""",
)

def _oci_run_impl(ctx):
    tag = ctx.attr.tag or "bazel-run/%s:%s" % (ctx.label.package.replace("/", "-").strip("-").lower() or "root", ctx.label.name.lower())
    archive = docker_archive(ctx, [tag])
    arguments = ["--archive", archive.short_path, "--layout", ctx.file.image.short_path, "--tag", tag]
    launcher = expand_launcher(ctx, {"{{run}}": [ctx.executable._run.short_path], "{{arguments}}": arguments})
    runfiles = ctx.runfiles(files = [archive, ctx.file.image]).merge(ctx.attr._run[DefaultInfo].default_runfiles)
    return [DefaultInfo(executable = launcher, runfiles = runfiles)]

oci_run = rule(
    implementation = _oci_run_impl,
    executable = True,
    doc = _DOC,
    attrs = {
        "image": attr.label(mandatory = True, allow_single_file = True, doc = "An oci_image (one platform)."),
        "tag": attr.string(doc = "The name it is loaded as; default bazel-run/<package>:<name>."),
        "_docker_archive": attr.label(default = "//tools/oci:docker_archive", executable = True, cfg = "exec"),
        "_launcher": launcher_attr("//tools/oci/private:run.sh.tpl"),
        "_run": attr.label(default = "//tools/oci:run", executable = True, cfg = "target"),
    },
)
