"""Analysis tests: the attestations reach the push and verify rules from the image targets."""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")
load("@bazel_skylib//rules:write_file.bzl", "write_file")
load(":attestations.bzl", "OciAttestationsInfo")
load(":image.bzl", "oci_image", "oci_image_index")
load(":push.bzl", "oci_push")

def _attests(target):
    """The --attest values a target carries, as (layout name, type, predicate name)."""
    arguments = target[OciAttestationsInfo].arguments
    found = []
    for index in range(0, len(arguments), 2):
        if arguments[index] != "--attest":
            fail("not an --attest argument: %s" % arguments[index])
        layout, kind, predicate = arguments[index + 1].split("=")
        found.append((layout.split("/")[-1], kind, predicate.split("/")[-1]))
    return sorted(found)

_BOTH = [
    ("attest_fixture_amd64", "slsaprovenance1", "attest_fixture_amd64_provenance.json"),
    ("attest_fixture_amd64", "spdxjson", "attest_fixture_amd64_sbom.json"),
    ("attest_fixture_arm64", "slsaprovenance1", "attest_fixture_arm64_provenance.json"),
    ("attest_fixture_arm64", "spdxjson", "attest_fixture_arm64_sbom.json"),
]

def _index_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.equals(env, _BOTH, _attests(analysistest.target_under_test(env)))
    return analysistest.end(env)

index_carries_images_attestations_test = analysistest.make(_index_test_impl)

def _push_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.equals(env, _BOTH, _attests(analysistest.target_under_test(env)))
    return analysistest.end(env)

push_attests_what_the_index_carries_test = analysistest.make(_push_test_impl)

def _image_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.equals(env, [], _attests(analysistest.target_under_test(env)))
    return analysistest.end(env)

image_without_predicates_attests_nothing_test = analysistest.make(_image_test_impl)

def attestations_test_suite(name):
    """Two images with an SBOM and a provenance each, their index and its push; tests of what each carries."""
    for arch in ["amd64", "arm64"]:
        image = "attest_fixture_" + arch
        for predicate in ["sbom", "provenance"]:
            write_file(name = "%s_%s" % (image, predicate), out = "%s_%s.json" % (image, predicate), content = ["{}"], tags = ["manual"])
        oci_image(name = image, architecture = arch, sbom = image + "_sbom", provenance = image + "_provenance", tags = ["manual"])
    oci_image(name = "attest_fixture_bare", tags = ["manual"])
    oci_image_index(name = "attest_fixture", images = ["attest_fixture_amd64", "attest_fixture_arm64"], tags = ["manual"])
    oci_push(name = "attest_fixture_push", image = "attest_fixture", tags = ["manual"])

    index_carries_images_attestations_test(name = name + "_index", target_under_test = ":attest_fixture")
    push_attests_what_the_index_carries_test(name = name + "_push", target_under_test = ":attest_fixture_push")
    image_without_predicates_attests_nothing_test(name = name + "_bare", target_under_test = ":attest_fixture_bare")
    native.test_suite(name = name, tests = [name + "_index", name + "_push", name + "_bare"])
