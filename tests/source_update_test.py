"""One library's security update, rebuilt for real: only the layer that holds its source changes.

A nested Bazel (its own server and output base) builds //python:3.11_amd64 from a copy of the workspace,
then again after the copy's bookworm lock pins zlib1g (amd64) to the other side of Debian's fix for
CVE-2026-27171 and CVE-2026-85091 (1:1.2.13.dfsg-1 and 1:1.2.13.dfsg-1+deb12u1, both served by the mirror;
the committed lock pins the fix since 2026-12-03, so the test swaps back to the version before it). Every layer of the
two images is compared by digest: only the one holding zlib's packages may differ, and the ld.so.cache only
if a library's file name changed (this update renames none, so it must not).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

from tools.remote.nested_bazel import NestedBazel, copy_checkout, executed_locally, workspace_from_runfiles

IMAGE = "3.11_amd64"
LOCK = "debian_packages/bookworm/lock.json"
# The update, as `update` would lock it from bookworm-security's Packages index.
PACKAGE = "zlib1g"
# Both sides of the update, as `update` locked them from bookworm's and bookworm-security's Packages indexes.
PINS = [
    {
        "archive": "debian",
        "filename": "pool/main/z/zlib/zlib1g_1.2.13.dfsg-1_amd64.deb",
        "sha256": "d7dd1d1411fedf27f5e27650a6eff20ef294077b568f4c8c5e51466dc7c08ce4",
        "size": 86684,
        "version": "1:1.2.13.dfsg-1",
    },
    {
        "archive": "debian-security",
        "filename": "pool/updates/main/z/zlib/zlib1g_1.2.13.dfsg-1+deb12u1_amd64.deb",
        "sha256": "ad9f1ea0537a32c9eaecc619563a9db596a5dee33afce8393b1083f22d301e1d",
        "size": 86880,
        "version": "1:1.2.13.dfsg-1+deb12u1",
    },
]
STATUS = "var/lib/dpkg/status.d/"


def blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / digest.replace(":", "/")).read_bytes()


def layers(layout: Path) -> dict[str, tuple[str, bytes]]:
    """Layer file name (from the config's history) -> (digest, compressed blob), for the layout's one image."""
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(blob(layout, index["manifests"][0]["digest"]))
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    names = [Path(entry["created_by"]).name for entry in config["history"] if not entry.get("empty_layer")]
    assert len(names) == len(manifest["layers"]), f"{layout}: history and layers disagree"
    return {name: (d["digest"], blob(layout, d["digest"])) for name, d in zip(names, manifest["layers"])}


def status_entry(layer: bytes, package: str) -> str | None:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as archive:
        for member in archive:
            if member.name.lstrip("./") == STATUS + package:
                return archive.extractfile(member).read().decode()
    return None


def swap_pin(workspace: Path) -> dict:
    """Pins the copy's zlib1g (amd64) to the other of PINS; returns the pin now locked."""
    lock = workspace / LOCK
    doc = json.loads(lock.read_text())
    entries = [p for p in doc["packages"] if p["name"] == PACKAGE and p["arch"] == "amd64"]
    versions = [pin["version"] for pin in PINS]
    assert len(entries) == 1 and entries[0]["version"] in versions, (
        f"{LOCK} pins {PACKAGE} (amd64) at neither of {versions}: pick another update the mirror serves for this test")
    other = PINS[1 - versions.index(entries[0]["version"])]
    entries[0].update(other)
    lock.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return other


def build(bazel: NestedBazel, step: str) -> dict[str, tuple[str, bytes]]:
    result = bazel.run("build", f"//python:{IMAGE}")
    assert result.returncode == 0, f"{step}: the nested build of //python:{IMAGE} failed; its output is above"
    # Something must have run (from the disk or repository cache or not): an up-to-date output proves nothing.
    assert executed_locally(result.processes) + result.processes.get("disk cache hit", 0) > 0, (
        f"{step}: the nested build ran no action: {result.processes}")
    return layers(bazel.bin_path(f"python/{IMAGE}"))


def test_one_source_update_changes_only_its_layer(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    copy_checkout(workspace_from_runfiles(dict(os.environ)), workspace)
    scratch = Path(os.environ.get("TEST_TMPDIR", tmp_path))
    with NestedBazel(workspace, scratch, "source-update") as bazel:
        before = build(bazel, "locked")
        pinned = swap_pin(workspace)
        after = build(bazel, f"{PACKAGE} swapped")

    assert list(before) == list(after), "the update changed which layers the image has"
    holding = [name for name, (_, data) in before.items() if status_entry(data, PACKAGE)]
    assert len(holding) == 1, f"{PACKAGE}'s status.d entry is in {holding or 'no layer'}; it belongs in one"
    layer = holding[0]
    assert f"Version: {pinned['version']}" in status_entry(after[layer][1], PACKAGE)
    changed = sorted(name for name in before if before[name][0] != after[name][0])
    assert changed == [layer], f"only {layer} (zlib's) may change, but these did: {changed}"


if __name__ == "__main__":
    import pytest

    raise SystemExit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"]))
