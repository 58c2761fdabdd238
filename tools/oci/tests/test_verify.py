"""Tests for tools/oci/verify.py: verdicts, the table, exit codes and input errors.

crane and cosign are small programs put first on PATH that answer from a JSON file (which tags the
"registry" serves, which digests are signed, which predicates are attested), so no registry is involved;
//tests:push_test runs the real thing against a real registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from tools.oci import verify

PREFIX = "127.0.0.1:5000/distroless"
FAKE = r'''
import base64, json, os, sys
state = json.load(open(os.environ["FAKE_STATE"]))
tool, args = os.path.basename(sys.argv[0]), sys.argv[1:]
with open(os.environ["FAKE_STATE"] + ".calls", "a") as log:
    log.write(json.dumps([tool, *args]) + "\n")
reference = args[-1]
if tool == "crane":
    if state.get("unreachable"):
        sys.exit(print("Error: Get http://x/v2/: dial tcp 127.0.0.1:9: connect: connection refused", file=sys.stderr) or 1)
    if reference in state["tags"]:
        sys.exit(print(state["tags"][reference]))
    sys.exit(print("Error: fetching: MANIFEST_UNKNOWN: manifest unknown", file=sys.stderr) or 1)
key = args[args.index("--key") + 1]
if open(key).read() != state["key"] or reference not in state["signed"]:
    sys.exit(print("Error: no matching signatures", file=sys.stderr) or 1)
if args[0] == "verify-attestation":
    kind = args[args.index("--type") + 1]
    types = {"spdxjson": "https://spdx.dev/Document", "slsaprovenance1": "https://slsa.dev/provenance/v1"}
    found = state["attested"].get(reference, {}).get(kind, [])
    if not found:
        sys.exit(print("Error: none of the attestations matched the predicate type", file=sys.stderr) or 1)
    for predicate in found:
        statement = {"predicateType": types[kind], "predicate": predicate}
        print(json.dumps({"payload": base64.b64encode(json.dumps(statement).encode()).decode()}))
'''


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_layout(directory: Path, documents: list[bytes]) -> str:
    """A layout whose index.json names documents[0]; every document is a blob. Returns that digest."""
    (directory / "blobs" / "sha256").mkdir(parents=True)
    for document in documents:
        (directory / "blobs" / "sha256" / digest_of(document).split(":")[1]).write_bytes(document)
    top = digest_of(documents[0])
    (directory / "index.json").write_text(json.dumps({"manifests": [{"digest": top}]}))
    return top


class World:
    """An index of two images with an SBOM and a provenance each, pushed, signed and attested as :push does."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp_path
        images = [json.dumps({"config": {"digest": f"sha256:{arch * 64}"}, "layers": []}).encode()
                  for arch in ("a", "b")]
        self.children = [digest_of(image) for image in images]
        index = json.dumps({"manifests": [{"digest": child} for child in self.children]}).encode()
        self.index = write_layout(tmp_path / "index", [index, *images])
        self.attest: list[str] = []
        predicates: dict[str, dict[str, list[Any]]] = {"spdxjson": {}, "slsaprovenance1": {}}
        for number, image in enumerate(images):
            write_layout(tmp_path / f"image{number}", [image])
            sbom = {"spdxVersion": "SPDX-2.3", "name": f"image{number}"}
            slsa = {"buildDefinition": {"buildType": "t", "externalParameters": {"target": f"//python:x{number}"},
                                        "resolvedDependencies": [{"name": "source", "digest": {"gitCommit": "1" * 40}},
                                                                 {"name": "lock.json", "digest": {"sha256": "2" * 64}}]},
                    "runDetails": {"builder": {"id": "b"}}}
            for kind, predicate in (("spdxjson", sbom), ("slsaprovenance1", slsa)):
                path = tmp_path / f"{kind}{number}.json"
                path.write_text(json.dumps(predicate))
                self.attest += ["--attest", f"{tmp_path / f'image{number}'}={kind}={path}"]
                predicates[kind][self.children[number]] = predicate
        self.key = tmp_path / "cosign.pub"
        self.key.write_text("PUBLIC KEY")
        by_digest = f"{PREFIX}/python@{self.index}"
        self.state: dict[str, Any] = {
            "tags": {f"{PREFIX}/python:3.13": self.index, f"{PREFIX}/python:latest": self.index},
            "key": "PUBLIC KEY",
            "signed": [by_digest],
            "attested": {by_digest: {kind: list(by_child.values()) for kind, by_child in predicates.items()}},
        }
        bin_directory = tmp_path / "bin"
        bin_directory.mkdir()
        for tool in ("crane", "cosign"):
            script = bin_directory / tool
            script.write_text(f"#!{sys.executable}\n{FAKE}")
            script.chmod(script.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("PATH", f"{bin_directory}:{os.environ.get('PATH', '/usr/bin:/bin')}")
        monkeypatch.setenv("FAKE_STATE", str(tmp_path / "state.json"))
        monkeypatch.delenv("DISTROLESS_REPOSITORY", raising=False)

    def run(self, *extra: str) -> int:
        (self.tmp / "state.json").write_text(json.dumps(self.state))
        return verify.main(["--image", f"{self.tmp / 'index'}=python:3.13,latest", "--repository", PREFIX,
                            *self.attest, *extra])

    def calls(self) -> list[list[str]]:
        log = self.tmp / "state.json.calls"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return World(tmp_path, monkeypatch)


def rows(output: str) -> dict[str, list[str]]:
    """The table's rows by tag, split on runs of two or more spaces."""
    import re
    lines = output.strip().splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["tag", "pushed digest", "rebuilt digest", "signature", "verdict"]
    return {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line) for line in lines[1:])}


def test_matching_signed_tags_pass(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert world.run("--key", str(world.key)) == 0
    captured = capsys.readouterr()
    table = rows(captured.out)
    for tag in ("3.13", "latest"):
        assert table[f"{PREFIX}/python:{tag}"] == [world.index, world.index, "verified", "OK"]
    assert f"verify: [1/2] {PREFIX}/python:3.13" in captured.err and f"[2/2] {PREFIX}/python:latest" in captured.err
    assert "verify: all 2 tags serve the images rebuilt here, signed and attested by the key" in captured.err
    # Two tags name one digest: its signature and attestations are checked once.
    assert sum(1 for call in world.calls() if call[:2] == ["cosign", "verify"]) == 1


def test_without_a_key_only_digests_are_compared_and_it_says_so(world: World, capsys) -> None:
    world.state["signed"] = []
    assert world.run() == 0
    captured = capsys.readouterr()
    assert rows(captured.out)[f"{PREFIX}/python:3.13"][2:] == ["not checked (no --key)", "OK"]
    assert "signatures and attestations are NOT checked" in captured.err
    assert not [call for call in world.calls() if call[0] == "cosign"]


def test_a_moved_tag_is_a_mismatch_named_in_the_summary(world: World, capsys) -> None:
    world.state["tags"][f"{PREFIX}/python:latest"] = world.children[0]
    assert world.run() == 1
    captured = capsys.readouterr()
    assert rows(captured.out)[f"{PREFIX}/python:latest"] == [world.children[0], world.index,
                                                             "not checked (no --key)", "MISMATCH"]
    assert rows(captured.out)[f"{PREFIX}/python:3.13"][-1] == "OK"
    assert f"verify: 1 of 2 tags FAILED: {PREFIX}/python:latest (MISMATCH)" in captured.err


def test_a_missing_tag_fails(world: World, capsys) -> None:
    del world.state["tags"][f"{PREFIX}/python:3.13"]
    assert world.run("--key", str(world.key)) == 1
    assert rows(capsys.readouterr().out)[f"{PREFIX}/python:3.13"] == ["(none)", world.index, "-", "MISSING"]


@pytest.mark.parametrize("change, message", [
    (lambda state, index: state.update(signed=[]), "BAD: no signature by this key"),
    (lambda state, index: state.update(key="ANOTHER KEY"), "BAD: no signature by this key"),
    (lambda state, index: state["attested"][f"{PREFIX}/python@{index}"].pop("slsaprovenance1"),
     "BAD: no slsaprovenance1 attestation by this key"),
    (lambda state, index: state["attested"][f"{PREFIX}/python@{index}"]["spdxjson"].pop(),
     "BAD: spdxjson attestations differ from the rebuilt ones"),
    (lambda state, index: state["attested"][f"{PREFIX}/python@{index}"]["slsaprovenance1"][0]["buildDefinition"]
     ["resolvedDependencies"][1]["digest"].update(sha256="3" * 64),
     "BAD: slsaprovenance1 attestations differ from the rebuilt ones"),
])
def test_bad_signatures_and_attestations_fail(world: World, capsys, change, message: str) -> None:
    change(world.state, world.index)
    assert world.run("--key", str(world.key)) == 1
    assert rows(capsys.readouterr().out)[f"{PREFIX}/python:3.13"][2:] == [message, "BAD SIGNATURE"]


def test_a_tag_moved_to_another_image_fails_alone(world: World, capsys) -> None:
    """Another image (here an index of the first image alone) is checked against its own attestations, even
    after a tag of the first image was moved to its digest and checked against the first image's."""
    other = json.dumps({"manifests": [{"digest": world.children[0]}]}).encode()
    image = (world.tmp / "index" / "blobs" / "sha256" / world.children[0].split(":")[1]).read_bytes()
    other_digest = write_layout(world.tmp / "other", [other, image])
    by_digest = f"{PREFIX}/python@{other_digest}"
    world.state["tags"][f"{PREFIX}/python:3.13"] = other_digest
    world.state["tags"][f"{PREFIX}/python:other"] = other_digest
    world.state["signed"].append(by_digest)
    world.state["attested"][by_digest] = {
        kind: predicates[:1] for kind, predicates in world.state["attested"][f"{PREFIX}/python@{world.index}"].items()}
    assert world.run("--image", f"{world.tmp / 'other'}=python:other", "--key", str(world.key)) == 1
    table = rows(capsys.readouterr().out)
    assert table[f"{PREFIX}/python:3.13"][1:] == [world.index, "BAD: spdxjson attestations differ from the rebuilt ones",
                                                  "MISMATCH"]
    assert table[f"{PREFIX}/python:latest"][-1] == "OK"
    assert table[f"{PREFIX}/python:other"] == [other_digest, other_digest, "verified", "OK"]


def test_another_source_commit_in_the_provenance_still_verifies(world: World) -> None:
    """A push from another commit with the same locks built the same image: its provenance still matches."""
    for predicate in world.state["attested"][f"{PREFIX}/python@{world.index}"]["slsaprovenance1"]:
        predicate["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"] = "9" * 40
    assert world.run("--key", str(world.key)) == 0


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [line for line in captured.err.splitlines() if not line.startswith("verify: [")]
    assert len(lines) == 1, captured.err
    return lines[0]


def test_unreachable_registry_is_one_clear_error(world: World, capsys) -> None:
    world.state["unreachable"] = True
    assert world.run("--key", str(world.key)) == 2
    line = error_line(capsys)
    assert line.startswith(f"verify: error: cannot read {PREFIX}/python:3.13 from the registry") and "reachable" in line


@pytest.mark.parametrize("arguments, message", [
    (["--repository", "127.0.0.1:5000/Bad"], "is not a valid repository"),
    (["--repository", ""], "no repository"),
    (["--key", "/nonexistent/cosign.pub"], "the public key /nonexistent/cosign.pub does not exist"),
])
def test_bad_input_is_one_clear_error_before_any_network(world: World, capsys, arguments, message: str) -> None:
    assert world.run(*arguments) == 2
    assert message in error_line(capsys)
    assert world.calls() == []


def test_a_private_key_is_refused(world: World, capsys) -> None:
    world.key.write_text("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    assert world.run("--key", str(world.key)) == 2
    assert "is a private key; pass the public key" in error_line(capsys)
    assert world.calls() == []


def test_a_relative_key_is_found_where_bazel_run_was_started(world: World, monkeypatch, capsys) -> None:
    monkeypatch.setenv("BUILD_WORKING_DIRECTORY", str(world.tmp))
    monkeypatch.chdir(world.tmp / "bin")
    assert world.run("--key", "cosign.pub") == 0
