"""Rules that put Python requirements and an application on one of the images, with the image's own Python."""

load("//tools/image/private:layers.bzl", "LOCAL_ONLY")
load("//tools/oci:defs.bzl", "oci_image", "oci_image_index", "oci_load", "oci_push", "oci_run")
load("//tools/private:docs.bzl", "rule_doc")
load("//tools/private:launcher.bzl", "expand_launcher", "launcher_attr")

_SITE = "usr/lib/python3/dist-packages"

def _base_attr():
    return attr.label(
        mandatory = True,
        allow_single_file = True,
        doc = "The image to build on: an oci_image of one architecture, e.g. //python:3.13_amd64. Its own interpreter checks and compiles.",
    )

def _python_attr():
    return attr.string(default = "usr/bin/python3", doc = "The interpreter inside the image.")

def _layer(ctx, tool, arguments, inputs, mnemonic, message):
    out = ctx.actions.declare_file(ctx.label.name + ".tar.gz")
    args = ctx.actions.args()
    args.add("--base", ctx.file.base.path)
    args.add("--python", ctx.attr.python)
    args.add("--output", out)
    args.add_all(arguments)
    ctx.actions.run(
        executable = tool,
        arguments = [args],
        inputs = depset([ctx.file.base] + inputs),
        outputs = [out],
        mnemonic = mnemonic,
        progress_message = message,
        # The image's own Python runs chrooted into its layers: see LOCAL_ONLY.
        execution_requirements = LOCAL_ONLY,
    )
    return [DefaultInfo(files = depset([out]))]

def _py_wheels_layer_impl(ctx):
    wheels = [wheel for wheel in ctx.files.wheels if wheel.basename.endswith(".whl")]
    arguments = ["--site", ctx.attr.site] + [argument for wheel in wheels for argument in ["--wheel", wheel.path]]
    return _layer(ctx, ctx.executable._tool, arguments, wheels, "PyWheelsLayer", "Installing wheels with the image's Python for %{output}")

_WHEELS_LAYER_DOC = rule_doc(
    summary = """A layer holding wheels installed for one image, by that image's own Python.""",
    behavior = """
The image's interpreter, chrooted into `base` (under qemu for another architecture), reports what decides
whether a wheel fits: version, ABI, machine and glibc. Per project, the best fitting wheel is installed
as the wheel format says (every file checked against its RECORD; entry points become /usr/bin scripts)
into `site`, and the image's Python byte-compiles it. Native code must be built for the image's machine.
A wheel that fits nothing, or a file that fails its RECORD, is an error naming the wheel and the image.
The result is one deterministic `NAME.tar.gz`.
""",
    usage = """
Build it, or give it to an oci_image's `tars`; py_app_image makes one per architecture.
""",
    examples = """
```starlark
py_wheels_layer(
    name = "requirements_amd64",
    base = "//python:3.13_amd64_nonroot",
    wheels = ["@hello_service_wheels//:amd64"],
)
```
""",
)

py_wheels_layer = rule(
    implementation = _py_wheels_layer_impl,
    doc = _WHEELS_LAYER_DOC,
    attrs = {
        "base": _base_attr(),
        "wheels": attr.label_list(allow_files = [".whl"], mandatory = True, doc = "Wheels, e.g. @<hub>//:amd64 from the python_wheels extension."),
        "site": attr.string(default = _SITE, doc = "The site directory inside the image; it must be on the image's site-packages path."),
        "python": _python_attr(),
        "_tool": attr.label(default = "//tools/python:install_wheels", executable = True, cfg = "exec"),
    },
)

def _py_app_layer_impl(ctx):
    package = ctx.label.package
    strip = ctx.attr.strip_prefix if ctx.attr.strip_prefix else package
    arguments = ["--directory", ctx.attr.directory]
    for layer in ctx.files.layers:
        arguments += ["--layer", layer.path]
    for src in ctx.files.srcs:
        path = src.short_path
        if strip and not path.startswith(strip + "/"):
            fail("%s is not under %s; set strip_prefix" % (path, strip))
        arguments += ["--file", "%s=%s" % (src.path, path[len(strip) + 1:] if strip else path)]
    return _layer(ctx, ctx.executable._tool, arguments, ctx.files.srcs + ctx.files.layers, "PyAppLayer", "Adding the app and compiling it with the image's Python for %{output}")

_APP_LAYER_DOC = rule_doc(
    summary = """A layer holding an application's files under `directory` (/app), with the .pyc files the
image's own Python compiled.""",
    behavior = """
Each file keeps its path below `strip_prefix` (default: the declaring package). The image's interpreter,
chrooted into `base` plus `layers` (e.g. the installed requirements, so nothing shadows them), byte-compiles
the Python files, deterministically (unchecked-hash), as the stdlib is. Executable sources stay 0755,
everything else is 0644.
""",
    usage = """
Build it, or give it to an oci_image's `tars`; py_app_image makes one per architecture.
""",
    examples = """
```starlark
py_app_layer(
    name = "app_amd64",
    base = "//python:3.13_amd64_nonroot",
    srcs = glob(["my_app/*.py"]),
    layers = [":requirements_amd64"],
)
```
""",
)

py_app_layer = rule(
    implementation = _py_app_layer_impl,
    doc = _APP_LAYER_DOC,
    attrs = {
        "base": _base_attr(),
        "srcs": attr.label_list(allow_files = True, mandatory = True, doc = "The app's files; their paths below `strip_prefix` are kept."),
        "strip_prefix": attr.string(doc = "Removed from each file's path; default: the package of this target."),
        "layers": attr.label_list(allow_files = [".tar", ".tar.gz", ".tar.zst"], doc = "Layers between the base and the app, e.g. the py_wheels_layer."),
        "directory": attr.string(default = "app", doc = "The app's directory inside the image."),
        "python": _python_attr(),
        "_tool": attr.label(default = "//tools/python:app_layer", executable = True, cfg = "exec"),
    },
)

def _py_requirements_lock_impl(ctx):
    arguments = [
        "--requirements",
        ctx.file.requirements.short_path,
        "--output",
        ctx.attr.lock_path or "/".join([part for part in [ctx.label.package, "requirements.lock"] if part]),
        "--python-version",
        ctx.attr.python_version,
        "--glibc",
        ctx.attr.glibc,
    ]
    for architecture in ctx.attr.architectures:
        arguments += ["--architecture", architecture]
    # The launcher runs in the runfiles, where a file is at its short_path.
    for directory in sorted({wheel.short_path.rpartition("/")[0] or ".": None for wheel in ctx.files.find_links}.keys()):
        arguments += ["--find-links", directory]
    label = "//%s:%s" % (ctx.label.package, ctx.label.name) if not ctx.label.workspace_name else str(ctx.label)
    arguments += ["--wheelhouse", ctx.attr.wheelhouse, "--update-command", "tools/bazel run " + label]
    launcher = expand_launcher(ctx, {"{{tool}}": [ctx.executable._tool.short_path], "{{arguments}}": arguments})
    runfiles = ctx.runfiles(files = [ctx.file.requirements] + ctx.files.find_links).merge(ctx.attr._tool[DefaultInfo].default_runfiles)
    return [DefaultInfo(executable = launcher, runfiles = runfiles)]

_REQUIREMENTS_LOCK_DOC = rule_doc(
    summary = """(Re)writes a requirements lock with pip's resolver: `bazel run` it.""",
    behavior = """
`requirements` holds the app's top-level requirements as pip reads them (extras, markers, version
specifiers). tools/python/requirements_lock_writer.py resolves them with pip (`pip install --dry-run --report`) for each
architecture's CPython and glibc, wheels only, from the configured index (PIP_INDEX_URL, pip's
configuration, or pip's default), PIP_FIND_LINKS, `find_links` and the `wheelhouse`, and writes the whole
closure pinned with each wheel's sha256, plus the sha256 of `requirements` (a build with a stale lock fails
and names this target). A pure-Python sdist is built into a deterministic wheel; every local wheel the lock
names is copied into the wheelhouse (commit it). Every architecture's problems are reported together (all of
its missing wheels in one list, then the fix), and the lock is then left as it was.
""",
    usage = """
`tools/bazel run //examples/hello_service:requirements.update` writes `lock_path` in the workspace; flags
after `--` come after the rule's own.
""",
    examples = """
```starlark
py_requirements_lock(
    name = "requirements.update",
    requirements = "requirements.in",
    python_version = "3.13",
    glibc = "2.41",  # trixie's, the glibc of //python:3.13
)
```
""",
)

py_requirements_lock = rule(
    implementation = _py_requirements_lock_impl,
    executable = True,
    doc = _REQUIREMENTS_LOCK_DOC,
    attrs = {
        "requirements": attr.label(allow_single_file = True, mandatory = True, doc = "Top-level requirements, as pip reads them (e.g. `fastapi`, `uvicorn[standard]>=0.30`)."),
        "find_links": attr.label_list(allow_files = [".whl"], doc = "Local wheels the resolver may use (as PIP_FIND_LINKS)."),
        "wheelhouse": attr.string(default = "wheelhouse", doc = "Beside the lock: the directory local and built wheels are copied into."),
        "lock_path": attr.string(doc = "The lock to write, relative to the workspace; default: <package>/requirements.lock."),
        "python_version": attr.string(mandatory = True, doc = "The images' Python, e.g. 3.13."),
        "architectures": attr.string_list(default = ["amd64", "arm64"]),
        "glibc": attr.string(mandatory = True, doc = "The images' glibc version, e.g. 2.41 for trixie: the newest manylinux tag allowed."),
        "_launcher": launcher_attr("//tools/python/private:requirements_lock.sh.tpl"),
        "_tool": attr.label(default = "//tools/python:requirements_lock_writer", executable = True, cfg = "target"),
    },
)

def py_app_image(
        name,
        bases,
        wheels,
        srcs,
        entrypoint,
        cmd = [],
        env = {},
        directory = "app",
        strip_prefix = "",
        python = "usr/bin/python3",
        repo_tags = [],
        remote_tags = ["latest"],
        **kwargs):
    """An app image per architecture and an index over them: base + requirements layer + app layer.

    Makes NAME_<arch>_requirements (py_wheels_layer), NAME_<arch>_app (py_app_layer), NAME_<arch>
    (oci_image) and NAME (oci_image_index), and to use them: NAME_load (`docker load` of the amd64 image, or
    the only one), NAME_push (the index, to `--repository` given at run time), NAME_run and NAME_<arch>_run
    (`bazel run` runs the image in an engine, DOCKER_HOST's or a private one; arguments after `--` go to it,
    after the run's own `--publish PORT`, which serves on the machine's 127.0.0.1:PORT).

    Args:
      name: the index's name.
      bases: architecture -> the oci_image to build on, e.g. {"amd64": "//python:3.13_amd64_nonroot"}.
      wheels: architecture -> the wheels, e.g. {"amd64": "@my_wheels//:amd64"}.
      srcs: the app's files, placed under /`directory` with their paths below `strip_prefix`.
      entrypoint: the container's entrypoint, e.g. ["/usr/bin/python3", "-m", "my_app"].
      cmd: default arguments.
      env: environment, merged over the base's; PYTHONPATH=/`directory` is added so `-m` finds the app.
      directory: the app's directory inside the image.
      strip_prefix: removed from the files' paths; default: the calling package.
      python: the interpreter inside the images.
      repo_tags: the names NAME_load gives the image; default NAME:latest.
      remote_tags: the tags NAME_push points at the pushed index (more with `--tag` at run time).
      **kwargs: passed to every target (tags, visibility, testonly).
    """
    images = []
    for architecture, base in sorted(bases.items()):
        prefix = "%s_%s" % (name, architecture)
        py_wheels_layer(name = prefix + "_requirements", base = base, wheels = [wheels[architecture]], python = python, **kwargs)
        py_app_layer(
            name = prefix + "_app",
            base = base,
            srcs = srcs,
            layers = [prefix + "_requirements"],
            directory = directory,
            strip_prefix = strip_prefix,
            python = python,
            **kwargs
        )
        oci_image(
            name = prefix,
            base = base,
            tars = [prefix + "_requirements", prefix + "_app"],
            entrypoint = entrypoint,
            cmd = cmd,
            env = dict({"PYTHONPATH": "/" + directory}, **env),
            **kwargs
        )
        oci_run(name = prefix + "_run", image = prefix, tag = "%s:%s" % (name.lower(), architecture), **kwargs)
        images.append(prefix)
    oci_image_index(name = name, images = images, **kwargs)
    default = "amd64" if "amd64" in bases else sorted(bases.keys())[0]
    oci_load(name = name + "_load", image = "%s_%s" % (name, default), repo_tags = repo_tags or [name.lower() + ":latest"], **kwargs)
    oci_push(name = name + "_push", image = name, remote_tags = remote_tags, **kwargs)
    native.alias(name = name + "_run", actual = "%s_%s_run" % (name, default), **kwargs)
