"""`bazel run //:push` against a real registry (Debian's docker-registry) started on loopback by this test.

Each --expect LAYOUT=NAME:TAG[,TAG] names a locally built image and the tags :push must give it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

PUSH = os.environ["PUSH_BINARY"]
EXPECTED = [arg.split("=", 1) for arg in os.environ["PUSH_EXPECT"].split()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# A throwaway account for the registry that requires credentials: user "pusher", password "not-a-secret".
USER, PASSWORD = "pusher", "not-a-secret"
PASSWORD_BCRYPT = "$2b$04$VBThy/9UaIIwVR3lcorxS.RpYDC5woKQjS9n3CZ.owcvU5OCUIcR."


@contextlib.contextmanager
def running_registry(with_auth: bool) -> Iterator[str]:
    """Runs docker-registry on 127.0.0.1 with storage in a temporary directory; yields host:port."""
    state = Path(tempfile.mkdtemp(prefix="registry-", dir=os.environ.get("TEST_TMPDIR")))
    port = free_port()
    auth = ""
    if with_auth:
        (state / "htpasswd").write_text(f"{USER}:{PASSWORD_BCRYPT}\n")
        auth = f"auth:\n  htpasswd:\n    realm: push-test\n    path: {state / 'htpasswd'}\n"
    config = state / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {state / 'data'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: warn\n{auth}")
    with open(state / "registry.log", "wb") as log:
        process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(port, process, state / "registry.log")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def registry() -> Iterator[str]:
    with running_registry(with_auth=False) as address:
        yield address


def wait_until_serving(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(100):
        assert process.poll() is None, f"docker-registry exited:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2):
                return
        except urllib.error.HTTPError as error:
            if error.code == 401:  # serving, and asking for credentials
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"docker-registry did not serve on port {port}:\n{log.read_text()}")


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


def test_refused_credentials_fail_clearly_and_move_no_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout, destination = EXPECTED[0]
    name, tags = destination.split(":")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no credentials at all
    with running_registry(with_auth=True) as address:
        refused = run_push("--repository", f"{address}/auth")
        assert refused.returncode == 1
        assert f"push: pushing {Path(layout).name} to {address}/auth/{name} failed" in refused.stderr
        assert "The registry refused the credentials" in refused.stderr

        # The user's docker config is where credentials come from.
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        (tmp_path / "config.json").write_text(json.dumps({"auths": {address: {"auth": token}}}))
        accepted = run_push("--repository", f"{address}/auth")
        assert accepted.returncode == 0, accepted.stderr
        digest = subprocess.run(["crane", "digest", f"{address}/auth/{name}:{tags.split(',')[0]}"],
                                capture_output=True, text=True, check=True).stdout.strip()
        assert digest == local_digest(layout)


def test_unreachable_registry_fails_with_one_clear_error() -> None:
    result = run_push("--repository", f"127.0.0.1:{free_port()}/distroless")
    assert result.returncode == 1
    assert "push: pushing" in result.stderr and "failed" in result.stderr and "no tag was moved" in result.stderr


@pytest.mark.parametrize("repository", ["127.0.0.1:5000/Distroless", "127.0.0.1:5000/a//b", ""])
def test_invalid_repository_is_rejected_before_any_network(repository: str) -> None:
    result = run_push("--repository", repository) if repository else run_push()
    assert result.returncode == 1
    assert result.stderr.startswith("push: ") and ("not a valid repository" in result.stderr or "no repository" in result.stderr)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
