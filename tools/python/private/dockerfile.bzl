"""dockerfile_test: a Dockerfile on these images, built with `docker build` in an engine and structure-tested."""

load("//tools/private:docs.bzl", "rule_doc")
load("//tools/private:launcher.bzl", "expand_launcher", "launcher_attr")

_DOC = rule_doc(
    summary = """Tests a Dockerfile: `bazel test` builds it with `docker build` in an engine, with no network,
and runs container-structure-test against the image it built.""",
    behavior = """
The test (tools/python/dockerfile_test.py) assembles the build context in its temporary directory:
`dockerfile` as `Dockerfile`, each of `srcs` at its path below `strip_prefix` (default: the declaring
package) and, with `lock`, the directory `wheels_dir` holding exactly the wheels of `wheels` the lock
lists for `machine` (each checked against the lock's sha256, so `pip install --require-hashes --no-index`
installs them; a wheel the lock does not hash, or a locked project without a wheel, fails the test). It
takes the engine `DOCKER_HOST` names, else starts the tests' private dockerd (root, in the build root) and
stops it after; runs every `images` target (oci_load, e.g. `//python:3.13-dev_load`) so the Dockerfile's
FROM images are there; builds with the classic builder and `--network=none`; then runs
container-structure-test with every `configs` against the image in the same engine. The build time and
the size over the last FROM image are printed to the test log. It never runs on a remote worker or in
Bazel's sandbox (the engine needs the build root itself); without root and without `DOCKER_HOST` it fails
and says so.
""",
    usage = """
`tools/bazel test //examples/hello_service:dockerfile_test`; with `DOCKER_HOST` set (e.g. to the engine
`tools/bazel run //tools/oci:engine` starts), that engine is used, and the built image is removed from it.
Load the rule from `//tools/python:defs.bzl` in any package (`@distroless_python//tools/python:defs.bzl`
from your own repository).
""",
    examples = """
```starlark
dockerfile_test(
    name = "dockerfile_test",
    dockerfile = "Dockerfile",
    srcs = ["requirements.lock"] + glob(["hello_service/*.py"]),
    images = ["//python:3.13-dev_load", "//python:3.13-nonroot_load"],
    lock = "requirements.lock",
    wheels = ["@hello_service_wheels//:amd64"],
    configs = ["tests/dockerfile_image.yaml"],
)
```
""",
)

def _executable(target):
    return target[DefaultInfo].files_to_run.executable

def _dockerfile_test_impl(ctx):
    package = ctx.label.package
    strip = ctx.attr.strip_prefix if ctx.attr.strip_prefix else package
    arguments = ["--dockerfile", ctx.file.dockerfile.short_path, "--structure-test", ctx.executable._structure_test_binary.short_path]
    for src in ctx.files.srcs:
        path = src.short_path
        if strip and not path.startswith(strip + "/"):
            fail("%s is not under %s; set strip_prefix" % (path, strip))
        arguments += ["--file", "%s=%s" % (path, path[len(strip) + 1:] if strip else path)]
    if ctx.file.lock:
        arguments += ["--lock", ctx.file.lock.short_path, "--wheels-dir", ctx.attr.wheels_dir, "--machine", ctx.attr.machine]
    elif ctx.files.wheels:
        fail("wheels need the lock they are checked against: set lock")
    for wheel in ctx.files.wheels:
        if wheel.basename.endswith(".whl"):
            arguments += ["--wheel", wheel.short_path]
    for image in ctx.attr.images:
        arguments += ["--load", _executable(image).short_path]
    for name, value in sorted(ctx.attr.build_args.items()):
        arguments += ["--build-arg", "%s=%s" % (name, value)]
    for config in ctx.files.configs:
        arguments += ["--config", config.short_path]
    launcher = expand_launcher(ctx, {"{{tool}}": [ctx.executable._tool.short_path], "{{arguments}}": arguments})
    files = [ctx.file.dockerfile, ctx.executable._structure_test_binary] + ctx.files.srcs + ctx.files.wheels + ctx.files.configs
    if ctx.file.lock:
        files.append(ctx.file.lock)
    runfiles = ctx.runfiles(files = files).merge_all(
        [ctx.attr._tool[DefaultInfo].default_runfiles] + [image[DefaultInfo].default_runfiles for image in ctx.attr.images],
    )
    return [
        DefaultInfo(executable = launcher, runfiles = runfiles),
        # The engine is started as root in the build root (or is DOCKER_HOST's): never sandboxed or remote.
        testing.ExecutionInfo({"no-remote-exec": "1", "no-sandbox": "1"}),
    ]

dockerfile_test = rule(
    implementation = _dockerfile_test_impl,
    test = True,
    doc = _DOC,
    attrs = {
        "dockerfile": attr.label(mandatory = True, allow_single_file = True, doc = "The Dockerfile; it is `Dockerfile` in the context."),
        "srcs": attr.label_list(allow_files = True, doc = "The build context's files, at their paths below `strip_prefix`."),
        "strip_prefix": attr.string(doc = "Removed from each file's path; default: the package of this target."),
        "images": attr.label_list(doc = "oci_load targets for the Dockerfile's FROM images (e.g. //python:3.13-dev_load), loaded before the build."),
        "lock": attr.label(allow_single_file = True, doc = "A requirements lock; with it the context's `wheels_dir` holds exactly its wheels for `machine`."),
        "wheels": attr.label_list(allow_files = [".whl"], doc = "The wheels for `wheels_dir`, e.g. @<hub>//:amd64 from the python_wheels extension."),
        "wheels_dir": attr.string(default = "wheels", doc = "The wheel directory inside the context."),
        "machine": attr.string(default = "x86_64", doc = "The machine the lock's entries are taken for (the built image's)."),
        "build_args": attr.string_dict(doc = "`docker build --build-arg` values."),
        "configs": attr.label_list(mandatory = True, allow_files = [".yaml", ".yml", ".json"], doc = "Structure test configs (schemaVersion 2.0.0) for the built image."),
        "_launcher": launcher_attr("//tools/python/private:dockerfile_test.sh.tpl"),
        "_tool": attr.label(default = "//tools/python:dockerfile_test", executable = True, cfg = "target"),
        "_structure_test_binary": attr.label(default = "@container_structure_test//:container-structure-test", executable = True, allow_single_file = True, cfg = "target"),
    },
)
