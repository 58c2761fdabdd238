"""Pinned PyPI wheels for repository rules: pip downloads them by hash, Bazel unpacks them."""

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

def wheel_library_build(name, doc):
    """A BUILD file exposing wheels unpacked into `site` as py_library `name` (`doc`: its comment line)."""
    return """load("@rules_python//python:defs.bzl", "py_library")

# %s
py_library(
    name = "%s",
    srcs = glob(["site/**/*.py"]),
    data = glob(["site/**"], exclude = ["site/**/*.py"]),
    imports = ["site"],
    visibility = ["//visibility:public"],
)
""" % (doc, name)

# The environment pip's index comes from, for the rules' `environ`.
PIP_ENVIRONMENT = ["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"]
