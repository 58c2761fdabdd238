"""`bazel run //:push` and `//:verify` against a real registry (Debian's docker-registry) started on loopback by
this test, with and without htpasswd authentication.

Credentials live where a user's do, outside the checkout: a docker config written by `crane auth login` and named
by DOCKER_CONFIG, or a credential helper program on PATH that it names; cosign keys too.

Each PUSH_EXPECT entry LAYOUT=NAME:TAG[,TAG] names a locally built image and the tags :push must give it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tools.oci.tests.local_registry import PASSWORD, USER, crane_login, free_port, running_registry

PUSH = os.environ["PUSH_BINARY"]
PUSH_ONE = os.environ["PUSH_ONE_BINARY"]
PUSH_ONE_LAYOUT = os.environ["PUSH_ONE_LAYOUT"]
VERIFY = os.environ["VERIFY_BINARY"]
EXPECTED = [arg.split("=", 1) for arg in os.environ["PUSH_EXPECT"].split()]
# Per-architecture image layout -> the SBOM :push attests for it.
SBOMS = dict(arg.split("=", 1) for arg in os.environ["PUSH_SBOMS"].split())
# Per-architecture image layout -> the SLSA provenance predicate :push attests for it.
PROVENANCES = dict(arg.split("=", 1) for arg in os.environ["PUSH_PROVENANCES"].split())
# cosign flags for verifying offline-signed images in a plain-HTTP loopback registry.
OFFLINE = ("--insecure-ignore-tlog=true", "--allow-http-registry")


@pytest.fixture(scope="module")
def registry() -> Iterator[str]:
    with running_registry(with_auth=False) as address:
        yield address


def run_push(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PUSH, *args], capture_output=True, text=True, timeout=600)


def local_digest(layout: str) -> str:
    return json.loads(Path(layout, "index.json").read_text())["manifests"][0]["digest"]


def blob(layout: str, digest: str) -> bytes:
    return Path(layout, "blobs", "sha256", digest.split(":")[1]).read_bytes()


def image_manifests(layout: str) -> list[dict]:
    """The image manifests a layout holds, looking through (nested) indexes."""
    pending, manifests = [local_digest(layout)], []
    while pending:
        document = json.loads(blob(layout, pending.pop()))
        if "manifests" in document:
            pending += [descriptor["digest"] for descriptor in document["manifests"]]
        else:
            manifests.append(document)
    return manifests


def run_verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VERIFY, *args], capture_output=True, text=True, timeout=1200)


def verdicts(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The verify table's verdict (last column) by tag reference (first column)."""
    lines = result.stdout.strip().splitlines()
    assert lines and lines[0].split()[0] == "tag", result.stdout + result.stderr
    return {line.split()[0]: re.split(r"\s{2,}", line)[-1] for line in lines[1:]}


def expected_references(prefix: str) -> set[str]:
    return {f"{prefix}/{destination.split(':')[0]}:{tag}" for _, destination in EXPECTED
            for tag in destination.split(":")[1].split(",")}


def crane(*args: str) -> str:
    return subprocess.run(["crane", *args], capture_output=True, text=True, check=True).stdout.strip()


def pushed_blobs(result: subprocess.CompletedProcess[str]) -> int:
    return result.stderr.count("pushed blob")


def test_push_tags_every_image_with_its_local_digest_and_is_idempotent(registry: str) -> None:
    prefix = f"{registry}/distroless"
    first = run_push("--repository", prefix)
    assert first.returncode == 0, first.stderr
    assert pushed_blobs(first) > 0
    for layout, destination in EXPECTED:
        name, tags = destination.split(":")
        for tag in tags.split(","):
            assert crane("digest", f"{prefix}/{name}:{tag}") == local_digest(layout), f"{name}:{tag}"

    # Every pushed index and image is well-formed as the registry serves it (layers are checked in full below).
    for layout, destination in EXPECTED:
        name, tags = destination.split(":")
        crane("validate", "--fast", "--remote", f"{prefix}/{name}:{tags.split(',')[0]}")

    # The rebuild check without a key: every tag serves the digest built here; signatures are not checked.
    checked = run_verify("--repository", prefix)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert verdicts(checked) == {reference: "OK" for reference in expected_references(prefix)}
    assert "signatures and attestations are NOT checked" in checked.stderr

    again = run_push("--repository", prefix)
    assert again.returncode == 0, again.stderr
    assert pushed_blobs(again) == 0, "a second push uploaded blobs again"
    assert "existing manifest" in again.stderr
    for layout, destination in EXPECTED:
        name, tags = destination.split(":")
        assert crane("digest", f"{prefix}/{name}:{tags.split(',')[0]}") == local_digest(layout)


def test_pulled_image_equals_the_local_one(registry: str, tmp_path: Path) -> None:
    layout, destination = EXPECTED[0]
    name, tags = destination.split(":")
    reference = f"{registry}/pulled/{name}:{tags.split(',')[0]}"
    assert run_push("--repository", f"{registry}/pulled").returncode == 0
    crane("validate", "--remote", reference)
    assert crane("digest", reference) == local_digest(layout)
    assert json.loads(crane("manifest", reference)) == json.loads(blob(layout, local_digest(layout)))
    for manifest in image_manifests(layout):
        config = manifest["config"]["digest"]
        architecture = json.loads(blob(layout, config))["architecture"]
        pulled = tmp_path / f"{architecture}.tar"
        crane("pull", "--platform", f"linux/{architecture}", "--format", "tarball", reference, str(pulled))
        # The pulled image is byte for byte the local one: its config and every (compressed) layer.
        with tarfile.open(pulled) as archive:
            pulled_manifest = json.loads(archive.extractfile("manifest.json").read())[0]
            assert archive.extractfile(pulled_manifest["Config"]).read() == blob(layout, config)
            pulled_layers = [hashlib.sha256(archive.extractfile(name).read()).hexdigest() for name in pulled_manifest["Layers"]]
        assert pulled_layers == [layer["digest"].split(":")[1] for layer in manifest["layers"]]


def upload_blob(registry: str, repository: str, data: bytes) -> None:
    """Uploads one blob the way an interrupted push leaves it: blob present, no manifest, no tag."""
    request = urllib.request.Request(f"http://{registry}/v2/{repository}/blobs/uploads/", method="POST")
    with urllib.request.urlopen(request) as response:
        location = response.headers["Location"]
    separator = "&" if "?" in location else "?"
    url = location if location.startswith("http") else f"http://{registry}{location}"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    request = urllib.request.Request(f"{url}{separator}digest={digest}", data=data, method="PUT",
                                     headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 201


def test_interrupted_push_completes_when_run_again(registry: str) -> None:
    layout, destination = EXPECTED[0]
    name, tags = destination.split(":")
    prefix = f"{registry}/resumed"
    manifest_digest = local_digest(layout)
    first_layer = image_manifests(layout)[0]["layers"][0]["digest"]
    upload_blob(registry, f"resumed/{name}", blob(layout, first_layer))
    missing_tag = subprocess.run(["crane", "digest", f"{prefix}/{name}:{tags.split(',')[0]}"], capture_output=True)
    assert missing_tag.returncode != 0, "the tag exists before the push completed"

    result = run_push("--repository", prefix)
    assert result.returncode == 0, result.stderr
    assert f"existing blob: {first_layer}" in result.stderr
    assert crane("digest", f"{prefix}/{name}:{tags.split(',')[0]}") == manifest_digest


@contextlib.contextmanager
def docker_config(directory: Path, monkeypatch: pytest.MonkeyPatch, config: dict | None = None) -> Iterator[Path]:
    """DOCKER_CONFIG naming `directory` (outside the checkout), for this test and what it runs."""
    directory.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (directory / "config.json").write_text(json.dumps(config))
    with monkeypatch.context() as patch:
        patch.setenv("DOCKER_CONFIG", str(directory))
        yield directory / "config.json"


def tag_exists(reference: str) -> bool:
    return subprocess.run(["crane", "digest", reference], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def auth_registry() -> Iterator[str]:
    with running_registry(with_auth=True) as address:
        yield address


def test_no_or_refused_credentials_fail_naming_the_registry_and_config_and_move_no_tag(
    auth_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    layout, destination = EXPECTED[0]
    name, tags = destination.split(":")
    reference = f"{auth_registry}/refused/{name}:{tags.split(',')[0]}"
    with docker_config(tmp_path / "none", monkeypatch) as config:
        refused = run_push("--repository", f"{auth_registry}/refused")
    assert refused.returncode == 1
    assert f"push: error: pushing {Path(layout).name} to {auth_registry}/refused/{name} failed" in refused.stderr
    assert (f"{auth_registry} asks for credentials and there are none for it in {config} (it does not exist); "
            f"log in with `crane auth login {auth_registry} -u USER`") in refused.stderr, refused.stderr
    assert refused.stderr.rstrip().endswith("no tag was moved.")

    with docker_config(tmp_path / "wrong", monkeypatch) as config:
        crane_login(auth_registry, password="wrong-password")
        wrong = run_push("--repository", f"{auth_registry}/refused")
    assert wrong.returncode == 1
    assert f"{auth_registry} refused the credentials of the auths entry for it in {config}" in wrong.stderr, wrong.stderr

    with docker_config(tmp_path / "right", monkeypatch):
        crane_login(auth_registry)
        assert not tag_exists(reference), "a refused push moved a tag"


def write_helper(directory: Path, name: str, home: Path, secret: str | None) -> Path:
    """docker-credential-NAME: answers `get` from a file in its own state directory under $HOME, as real helpers
    keep theirs; logs each call. With secret None it fails as a locked store does."""
    directory.mkdir(parents=True, exist_ok=True)
    state = home / f".{name}"
    state.mkdir(parents=True, exist_ok=True)
    if secret is not None:
        (state / "secret").write_text(secret)
    helper = directory / f"docker-credential-{name}"
    answer = (f'printf \'{{"ServerURL":"%s","Username":"{USER}","Secret":"%s"}}\\n\' "$server" "$(cat "$HOME/.{name}/secret")"'
              if secret is not None else 'echo "the store is locked; run unlock first"; exit 1')
    helper.write_text("#!/bin/sh\n"
                      '[ "$1" = get ] || { echo "unsupported: $1"; exit 1; }\n'
                      "read -r server\n"
                      f'echo "$server" >> "$HOME/.{name}/calls"\n'
                      f"{answer}\n")
    helper.chmod(0o755)
    return state / "calls"


@pytest.mark.parametrize("field", ["credHelpers", "credsStore"])
def test_push_with_a_credential_helper_on_path(
    field: str, auth_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    calls = write_helper(tmp_path / "bin", "testvault", home, PASSWORD)
    write_helper(tmp_path / "bin", "locked", home, None)
    config = {"credHelpers": {auth_registry: "testvault"}} if field == "credHelpers" else {"credsStore": "testvault"}
    repository = f"{auth_registry}/helper-{field.lower()}/python"
    with docker_config(tmp_path / "docker", monkeypatch, config):
        pushed = subprocess.run([PUSH_ONE, "--repository", repository, "--tag", "pinned"], capture_output=True,
                                text=True, timeout=600)
        assert pushed.returncode == 0, pushed.stderr
        assert crane("digest", f"{repository}:pinned") == local_digest(PUSH_ONE_LAYOUT)
    # crane asks for the registry, or (go-containerregistry's first key, with a credsStore) the repository in it.
    assert any(server.startswith(auth_registry) for server in calls.read_text().split()), "the helper was never asked"

    # A helper that fails is named, with what it said; nothing is tagged.
    locked = {"credHelpers": {auth_registry: "locked"}} if field == "credHelpers" else {"credsStore": "locked"}
    with docker_config(tmp_path / "locked", monkeypatch, locked) as config_file:
        failed = subprocess.run([PUSH_ONE, "--repository", repository, "--tag", "locked"], capture_output=True,
                                text=True, timeout=600)
    assert failed.returncode == 1
    assert (f"the credential helper docker-credential-locked ({field} in {config_file}) failed for {auth_registry}: "
            "the store is locked; run unlock first") in failed.stderr, failed.stderr
    with docker_config(tmp_path / "docker", monkeypatch, config):
        assert not tag_exists(f"{repository}:locked")


def test_a_dated_tag_never_moves(registry: str) -> None:
    """The dated tag (3.9.2-YYYYMMDD) is pushed where it is new; once it names another digest, a push refuses."""
    repository = f"{registry}/immutable/python"
    first = subprocess.run([PUSH_ONE, "--repository", repository], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    tags = crane("ls", repository).split()
    dated = [tag for tag in tags if re.fullmatch(r"3\.9\.\d+-\d{8}", tag)]
    assert len(dated) == 1, tags
    assert crane("digest", f"{repository}:{dated[0]}") == local_digest(PUSH_ONE_LAYOUT)
    # Pushing the same build again is fine: the tag already names this digest.
    again = subprocess.run([PUSH_ONE, "--repository", repository], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    # Someone else's build under the same dated tag: the push refuses, before moving any tag.
    other = crane("mutate", f"{repository}:{dated[0]}", "--label", "other=build", "--tag", f"{repository}:{dated[0]}")
    before = {tag: crane("digest", f"{repository}:{tag}") for tag in tags}
    refused = subprocess.run([PUSH_ONE, "--repository", repository], capture_output=True, text=True, timeout=600)
    assert refused.returncode == 1
    assert f"{repository}:{dated[0]} is an immutable tag and already names sha256:" in refused.stderr, refused.stderr
    assert {tag: crane("digest", f"{repository}:{tag}") for tag in tags} == before, f"a tag moved ({other})"


def test_unreachable_registry_fails_with_one_clear_error() -> None:
    result = run_push("--repository", f"127.0.0.1:{free_port()}/distroless")
    assert result.returncode == 1
    assert "push: error: pushing" in result.stderr and "failed" in result.stderr and "no tag was moved" in result.stderr


def test_verify_against_an_unreachable_registry_fails_with_one_clear_error() -> None:
    result = run_verify("--repository", f"127.0.0.1:{free_port()}/distroless")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if not line.startswith(("verify: [", "verify: NOTE"))]
    assert len(errors) == 1 and errors[0].startswith("verify: error: cannot read ") and "reachable" in errors[0], result.stderr


@pytest.mark.parametrize("repository", ["127.0.0.1:5000/Distroless", "127.0.0.1:5000/a//b", ""])
def test_invalid_repository_is_rejected_before_any_network(repository: str) -> None:
    result = run_push("--repository", repository) if repository else run_push()
    assert result.returncode == 1
    assert result.stderr.startswith("push: error: ") and ("not a valid repository" in result.stderr or "no repository" in result.stderr)


def cosign(*args: str, cwd: Path | None = None, password: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["cosign", *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          stdin=subprocess.DEVNULL, env=dict(os.environ, COSIGN_PASSWORD=password))


def key_pair(directory: Path, password: str) -> tuple[Path, Path]:
    """A throwaway cosign key pair, in cosign's own format."""
    directory.mkdir(parents=True)
    result = cosign("generate-key-pair", cwd=directory, password=password)
    assert result.returncode == 0, result.stderr
    return directory / "cosign.key", directory / "cosign.pub"


def attested(reference: str, public_key: Path, kind: str) -> list[dict]:
    result = cosign("verify-attestation", "--key", str(public_key), "--type", kind, *OFFLINE, reference)
    assert result.returncode == 0, f"{reference}: {result.stderr}"
    statements = [json.loads(base64.b64decode(json.loads(line)["payload"]))
                  for line in result.stdout.splitlines() if line.startswith("{")]
    return [statement["predicate"] for statement in statements]


def referrers(registry: str, repository: str, digest: str) -> int:
    """How many signatures and attestations the registry holds for a digest (the OCI 1.1 referrers tag)."""
    index = crane("manifest", f"{registry}/{repository}:{digest.replace(':', '-')}")
    return len(json.loads(index)["manifests"])


def signed_push(prefix: str, key: Path, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PUSH, "--repository", prefix, "--key", str(key)], capture_output=True, text=True,
                          timeout=1800, env=dict(os.environ, COSIGN_PASSWORD=password))


def test_signed_push_signs_and_attests_every_image_by_digest(
    auth_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Against the registry that asks for credentials, logged in with `crane auth login`, keys outside the checkout."""
    registry = auth_registry
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    crane_login(registry)
    password = "throwaway-test-password"
    key, public_key = key_pair(tmp_path / "keys", password)
    _, other_public_key = key_pair(tmp_path / "other", "another-password")
    prefix = f"{registry}/signed"

    # A wrong password, or a key file that does not exist, fails before anything is pushed, so no tag exists.
    refused = signed_push(prefix, key, "wrong-password")
    assert refused.returncode == 1
    assert "cannot use the signing key" in refused.stderr and "no image was pushed" in refused.stderr
    missing = signed_push(prefix, tmp_path / "no-such.key", password)
    assert missing.returncode == 1
    assert "no-such.key does not exist" in missing.stderr and "no image was pushed" in missing.stderr
    for reference in expected_references(prefix):
        assert subprocess.run(["crane", "digest", reference], capture_output=True).returncode != 0, \
            f"{reference} exists although the key was unusable"

    started = time.monotonic()
    result = signed_push(prefix, key, password)
    assert result.returncode == 0, result.stderr
    print(f"signed push of {len(EXPECTED)} indexes: {time.monotonic() - started:.1f} s")
    assert "NOT signed" not in result.stdout

    sboms_by_digest = {local_digest(layout): json.loads(Path(sbom).read_text()) for layout, sbom in SBOMS.items()}
    provenances_by_digest = {local_digest(layout): json.loads(Path(predicate).read_text())
                             for layout, predicate in PROVENANCES.items()}
    for predicate in provenances_by_digest.values():
        # SLSA v1's required fields.
        assert predicate["buildDefinition"]["buildType"] and predicate["buildDefinition"]["externalParameters"]
        assert predicate["runDetails"]["builder"]["id"]
    for layout, destination in EXPECTED:
        name, tags = destination.split(":")
        index = local_digest(layout)
        children = [descriptor["digest"] for descriptor in json.loads(blob(layout, index))["manifests"]]
        expected_sboms = sorted((sboms_by_digest[child] for child in children), key=json.dumps)
        expected_provenances = sorted((provenances_by_digest[child] for child in children), key=json.dumps)
        # The index's first tag, checked with cosign itself; every tag names the same digest, and the rebuild
        # check below verifies each tag's digest, signature and attestations.
        for tag in tags.split(",")[:1]:
            reference = f"{prefix}/{name}:{tag}"
            verified = cosign("verify", "--key", str(public_key), *OFFLINE, reference)
            assert verified.returncode == 0, f"{reference}: {verified.stderr}"
            assert index in verified.stdout
            # The index carries the SBOM of each of its images, as built.
            assert sorted(attested(reference, public_key, "spdxjson"), key=json.dumps) == expected_sboms
            # And the provenance of each, as built.
            assert sorted(attested(reference, public_key, "slsaprovenance1"), key=json.dumps) == expected_provenances
            wrong = cosign("verify", "--key", str(other_public_key), *OFFLINE, reference)
            assert wrong.returncode != 0, f"{reference} verified with another key"
        for child in children:
            reference = f"{prefix}/{name}@{child}"
            assert cosign("verify", "--key", str(public_key), *OFFLINE, reference).returncode == 0, reference
            assert attested(reference, public_key, "spdxjson") == [sboms_by_digest[child]]
            assert attested(reference, public_key, "slsaprovenance1") == [provenances_by_digest[child]]

    # The rebuild check with the public key: every tag's digest, signature and attestations verify.
    started = time.monotonic()
    checked = run_verify("--repository", prefix, "--key", str(public_key))
    print(f"verify of {len(expected_references(prefix))} tags with a key: {time.monotonic() - started:.1f} s")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert verdicts(checked) == {reference: "OK" for reference in expected_references(prefix)}
    assert checked.stdout.count(" verified ") == len(expected_references(prefix))

    # A tag moved to a digest nobody signed does not verify.
    layout, destination = EXPECTED[0]
    name, tags = destination.split(":")
    child = json.loads(blob(layout, local_digest(layout)))["manifests"][0]["digest"]
    moved = f"{prefix}/{name}:moved"
    crane("mutate", f"{prefix}/{name}@{child}", "--label", "unsigned=yes", "--tag", moved)
    assert crane("digest", moved) != child
    unsigned = cosign("verify", "--key", str(public_key), *OFFLINE, moved)
    assert unsigned.returncode != 0, "an unsigned digest verified"

    # Pushing again signs and attests nothing new.
    before = {digest: referrers(registry, f"signed/{name}", digest) for digest in (local_digest(layout), child)}
    again = signed_push(prefix, key, password)
    assert again.returncode == 0, again.stderr
    assert "  signed " not in again.stdout and "  attested " not in again.stdout
    assert "already signed" in again.stdout and "already attested" in again.stdout
    assert {digest: referrers(registry, f"signed/{name}", digest) for digest in before} == before

    # The rebuild check fails, naming the tag, once one tag is moved to another (signed) image's digest.
    layouts = {destination.split(":")[1].split(",")[0]: layout for layout, destination in EXPECTED}
    crane("tag", f"{prefix}/python@{local_digest(layouts['3.9-debug'])}", "3.9")
    moved_check = run_verify("--repository", prefix, "--key", str(public_key))
    assert moved_check.returncode == 1, moved_check.stdout + moved_check.stderr
    assert {ref: verdict for ref, verdict in verdicts(moved_check).items() if verdict != "OK"} == {
        f"{prefix}/python:3.9": "MISMATCH"}
    assert f"tags FAILED: {prefix}/python:3.9 (MISMATCH)" in moved_check.stderr


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
