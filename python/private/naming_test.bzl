"""Unit tests of naming.bzl: what the image matrix names its targets and tags, and which version is latest."""

load("@bazel_skylib//lib:unittest.bzl", "asserts", "unittest")
load(":naming.bzl", "archive_date", "dated_tag", "newest_stable", "tag", "tags", "target_name", "upstream_version")

def _upstream_version_test(ctx):
    env = unittest.begin(ctx)
    asserts.equals(env, "3.9.2", upstream_version("3.9.2-1+deb11u1"))
    asserts.equals(env, "3.13.5", upstream_version("3.13.5-2"))
    asserts.equals(env, "3.11.2", upstream_version("3.11.2-6+deb12u6"))

    # An epoch and a Debian-only "+b1" rebuild suffix are not part of the upstream version.
    asserts.equals(env, "3.14.0", upstream_version("1:3.14.0-1+b1"))
    asserts.equals(env, "2.3", upstream_version("2.3"))
    asserts.equals(env, "3.12.1", upstream_version("3.12.1+dfsg"))
    return unittest.end(env)

upstream_version_test = unittest.make(_upstream_version_test)

def _target_name_test(ctx):
    env = unittest.begin(ctx)
    asserts.equals(env, "3.9_amd64", target_name("3.9", "amd64", ""))
    asserts.equals(env, "3.13_arm64_nonroot", target_name("3.13", "arm64", "-nonroot"))
    asserts.equals(env, "3.14_riscv64_debug_nonroot", target_name("3.14", "riscv64", "-debug-nonroot"))
    return unittest.end(env)

target_name_test = unittest.make(_target_name_test)

def _tag_test(ctx):
    env = unittest.begin(ctx)
    asserts.equals(env, "3.9", tag("3.9", "", False))
    asserts.equals(env, "3.11-debug-nonroot", tag("3.11", "-debug-nonroot", False))
    asserts.equals(env, "3.14-experimental", tag("3.14", "", True))
    asserts.equals(env, "3.14-experimental-dev", tag("3.14", "-dev", True))
    return unittest.end(env)

tag_test = unittest.make(_tag_test)

def _dated_tag_test(ctx):
    env = unittest.begin(ctx)
    asserts.equals(env, "20261125", archive_date("20261125T022230Z"))
    asserts.equals(env, "3.13.5-20261125", dated_tag("3.13.5", "20261125", "", False))
    asserts.equals(env, "3.13.5-20261125-debug-nonroot", dated_tag("3.13.5", "20261125", "-debug-nonroot", False))
    asserts.equals(env, "3.14.0-experimental-20261030-dev", dated_tag("3.14.0", "20261030", "-dev", True))
    return unittest.end(env)

dated_tag_test = unittest.make(_dated_tag_test)

def _entry(experimental):
    return struct(experimental = experimental)

def _newest_stable_test(ctx):
    env = unittest.begin(ctx)

    # Numeric, not string, order: 3.13 is newer than 3.9; an experimental version never becomes latest.
    pythons = {"3.9": _entry(False), "3.13": _entry(False), "3.11": _entry(False), "3.14": _entry(True)}
    asserts.equals(env, "3.13", newest_stable(pythons))
    asserts.equals(env, None, newest_stable({"3.14": _entry(True)}))
    asserts.equals(
        env,
        ["3.13-nonroot", "3.13.5-nonroot", "3.13.5-20261125-nonroot", "latest-nonroot"],
        tags("3.13", "-nonroot", False, "3.13", "3.13.5", "20261125T022230Z"),
    )
    asserts.equals(env, ["3.9", "3.9.2", "3.9.2-20260912"], tags("3.9", "", False, "3.13", "3.9.2", "20260912T092708Z"))
    asserts.equals(
        env,
        ["3.14-experimental-debug", "3.14.0-experimental-debug", "3.14.0-experimental-20261030-debug"],
        tags("3.14", "-debug", True, "3.13", "3.14.0", "20261030T080801Z"),
    )
    return unittest.end(env)

newest_stable_test = unittest.make(_newest_stable_test)

def naming_test_suite(name):
    unittest.suite(
        name,
        upstream_version_test,
        target_name_test,
        tag_test,
        dated_tag_test,
        newest_stable_test,
    )
