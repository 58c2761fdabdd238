"""Pinned PyPI wheels for repository rules: pip downloads them by hash, Bazel unpacks them."""

# The environment pip's index comes from, for the rules' `environ`.
PIP_ENVIRONMENT = ["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"]

def unpack_pinned_wheels(rctx, pins, what, output):
    """Downloads the wheels `pins` names (requirement -> sha256) and unpacks them all into `output`.

    pip runs with --require-hashes through the user's own pip configuration (index URL, proxies,
    certificates), so no index host is written in the project. Fails with the fix when pip cannot.
    """
    rctx.file("requirements.txt", "".join(["%s --hash=sha256:%s\n" % (pin, sha256) for pin, sha256 in pins.items()]))
    rctx.report_progress("pip download " + what)
    result = rctx.execute(
        [
            "python3", "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--require-hashes", "--requirement", "requirements.txt", "--dest", "wheels",
        ],
        timeout = 600,
        quiet = False,
    )
    if result.return_code != 0:
        fail("pip could not download %s (exit %d): %s\nCheck pip's index configuration (PIP_INDEX_URL or pip.conf)." % (what, result.return_code, result.stderr))
    wheels = sorted([path for path in rctx.path("wheels").readdir() if path.basename.endswith(".whl")], key = lambda path: path.basename)
    if len(wheels) != len(pins):
        fail("pip downloaded %d wheels for the %d pins of %s" % (len(wheels), len(pins), what))
    for wheel in wheels:
        # A wheel is a zip; Bazel 7's extract() picks the format by file name only.
        rctx.symlink(wheel, "zips/" + wheel.basename + ".zip")
        rctx.extract("zips/" + wheel.basename + ".zip", output = output)

def _wheel_library_impl(rctx):
    machine = rctx.execute(["uname", "-m"]).stdout.strip()
    per_machine = json.decode(rctx.attr.per_machine) if rctx.attr.per_machine else {}
    if per_machine and machine not in per_machine:
        fail("%s has compiled wheels pinned for %s only, not %s; add this machine's to %s" % (
            rctx.attr.what,
            ", ".join(sorted(per_machine)),
            machine,
            rctx.attr.pinned_in,
        ))
    pins = dict(rctx.attr.pins)
    pins.update(per_machine.get(machine, {}))
    unpack_pinned_wheels(rctx, pins, "%s and its %d dependencies" % (rctx.attr.what, len(pins) - 1), output = "site")
    rctx.file("BUILD.bazel", """load("@rules_python//python:defs.bzl", "py_library")

# %s
py_library(
    name = "%s",
    srcs = glob(["site/**/*.py"]),
    data = glob(["site/**"], exclude = ["site/**/*.py"]),
    imports = ["site"],
    visibility = ["//visibility:public"],
)
""" % (rctx.attr.usage, rctx.attr.name.split("~")[-1].split("+")[-1]))

wheel_library = repository_rule(
    implementation = _wheel_library_impl,
    doc = "Downloads pinned wheels with pip (--require-hashes) and exposes them as one py_library named as the repository.",
    attrs = {
        "pins": attr.string_dict(mandatory = True, doc = "Requirement (name==version) -> sha256, for every machine."),
        "per_machine": attr.string(doc = "JSON: `uname -m` -> {requirement: sha256} of the compiled wheels."),
        "what": attr.string(mandatory = True, doc = "What the wheels are, for progress and messages."),
        "usage": attr.string(mandatory = True, doc = "How the library is used, for its BUILD file's comment."),
        "pinned_in": attr.string(mandatory = True, doc = "The file that pins them, for messages."),
    },
    environ = PIP_ENVIRONMENT,
)

