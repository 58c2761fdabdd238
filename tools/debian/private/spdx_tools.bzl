"""The spdx-tools validator (`pyspdxtools`), from its PyPI wheels, pinned by hash, for the SBOM tests."""

load("//tools/private:pip_wheels.bzl", "wheel_library")

# spdx-tools and every dependency it needs, all pure-Python wheels (so one hash fits every machine), except
# PyYAML, which the build root's python3-yaml provides. pip fetches them through the user's own pip
# configuration (index URL, proxies, certificates), so no index host is written here.
_WHEELS = {
    "spdx-tools==0.8.5": "7c2d5865941be9d2e898f5b084e8d5422dd298dc5a29320ddb198fec304f59c4",
    "beartype==0.23.1": "4461b4dc57e3fdd6c8a8464b22cf118002eea107c33e9fef651c69068ab3cce3",
    "boolean.py==5.0": "ef28a70bd43115208441b53a045d1549e2f0ec6e3d08a9d142cbc41c1938e8d9",
    "click==8.5.1": "8bb5376d2006950386f8c6427613334a2acadc5f559cb80e638d00b4df957e37",
    "license-expression==30.4.4": "421788fdcadb41f049d2dc934ce666626265aeccefddd25e162a26f23bcbf8a4",
    "ply==3.11": "096f9b8350b65ebd2fd1346b12452efe5b9607f7482813ffca50c22722a807ce",
    "pyparsing==3.3.3": "ece8c00a69cf01b45d0b1dedabb469c90d8caf996d4fda40f147627a122849a4",
    "rdflib==7.6.0": "30c0a3ebf4c0e09215f066be7246794b6492e054e782d7ac2a34c9f70a15e0dd",
    "semantic-version==2.10.0": "de78a3b8e0feda74cabc54aab2da702113e33ac9d9eb9d2389bcf1f58b7d9177",
    "uritools==6.1.5": "6cc6b29458d7df933c8fcebafe766442265742875c339711986c8f6d639f8909",
    "xmltodict==1.0.4": "a4a00d300b0e1c59fc2bfccb53d7b2e88c32f200df138a0dd2229f842497026a",
}

def _spdx_tools_impl(module_ctx):
    wheel_library(
        name = "spdx_tools",
        pins = _WHEELS,
        what = "spdx-tools",
        usage = "`python3 -m spdx_tools.spdx.clitools.pyspdxtools -i FILE` with this library on the path.",
        pinned_in = "tools/debian/private/spdx_tools.bzl",
    )

spdx_tools = module_extension(implementation = _spdx_tools_impl)
