"""Unit tests of source_layers.bzl: grouping by source, dependency order, and the folding rule."""

load("@bazel_skylib//lib:unittest.bzl", "asserts", "unittest")
load(":source_layers.bzl", "FOLDED", "by_source", "fold", "layer_plan", "source_order")

def _package(source, size, depends = []):
    return {"source": source, "size": size, "depends": depends}

# A closure like bookworm's, in small: glibc and gcc depend on each other (libc6 <-> libgcc-s1).
_PACKAGES = {
    "libc6": _package("glibc", 2800, ["libgcc-s1"]),
    "libc-bin": _package("glibc", 600, ["libc6"]),
    "libgcc-s1": _package("gcc-12", 50, ["libc6"]),
    "libstdc++6": _package("gcc-12", 600, ["libc6", "libgcc-s1"]),
    "zlib1g": _package("zlib", 90, ["libc6"]),
    "netbase": _package("netbase", 12),
    "libpython3.11-stdlib": _package("python3.11", 1800, ["libc6", "zlib1g"]),
}

def _by_source_test(ctx):
    env = unittest.begin(ctx)
    asserts.equals(env, {"gcc-12": ["libgcc-s1", "libstdc++6"], "glibc": ["libc-bin", "libc6"]}, by_source(_PACKAGES, ["libc6", "libstdc++6", "libc-bin", "libgcc-s1"]))
    return unittest.end(env)

by_source_test = unittest.make(_by_source_test)

def _source_order_test(ctx):
    env = unittest.begin(ctx)
    sources = by_source(_PACKAGES, _PACKAGES.keys())

    # The glibc/gcc cycle is entered at its smallest name; zlib comes before python, which needs it.
    asserts.equals(env, ["netbase", "gcc-12", "glibc", "zlib", "python3.11"], source_order(_PACKAGES, sources))
    return unittest.end(env)

source_order_test = unittest.make(_source_order_test)

def _fold_test(ctx):
    env = unittest.begin(ctx)
    sources = by_source(_PACKAGES, _PACKAGES.keys())
    asserts.equals(env, [], fold(_PACKAGES, sources, 5))

    # Three layers for five sources: the three smallest (netbase 12, zlib 90, gcc-12 650) share one.
    folded = fold(_PACKAGES, sources, 3)
    asserts.equals(env, ["gcc-12", "netbase", "zlib"], folded)
    asserts.equals(env, [
        (FOLDED, ["libgcc-s1", "libstdc++6", "netbase", "zlib1g"]),
        ("glibc", ["libc-bin", "libc6"]),
        ("python3.11", ["libpython3.11-stdlib"]),
    ], layer_plan(_PACKAGES, sources, folded))
    return unittest.end(env)

fold_test = unittest.make(_fold_test)

def source_layers_test_suite(name):
    unittest.suite(name, by_source_test, source_order_test, fold_test)
