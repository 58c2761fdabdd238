"""Unit test of the hub's .deb labels: canonical, so they name the hub whatever Bazel calls its repositories.

A hub label built from the apparent name (the text after the last `~` of the canonical one) breaks under
Bazel 8's `+` names, and under a `use_repo` that names the hub differently; a canonical `@@` label resolves
the same from every repository.
"""

load("@bazel_skylib//lib:unittest.bzl", "asserts", "unittest")
load("@debian_releases//:releases.bzl", "RELEASES")

_HUB = Label("@debian_releases//:releases.bzl")

def _hub_labels_test(ctx):
    env = unittest.begin(ctx)
    wrong = []
    checked = 0
    for release, locked in sorted(RELEASES.items()):
        for arch, packages in sorted(locked.packages.items()):
            for name, package in sorted(packages.items()):
                deb = package["deb"]
                if not deb.startswith("@@") or not deb.endswith("//%s/%s:%s" % (release, arch, name)):
                    wrong.append(deb)
                elif Label(deb).repo_name != _HUB.repo_name:
                    wrong.append(deb)
                checked += 1
    asserts.true(env, checked > 0, "the hub lists no package")
    asserts.equals(env, [], wrong[:3], "%d of %d .deb labels are not canonical labels in the hub %s" % (
        len(wrong),
        checked,
        _HUB.repo_name,
    ))
    return unittest.end(env)

hub_labels_test = unittest.make(_hub_labels_test)
