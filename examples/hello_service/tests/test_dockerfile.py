"""examples/hello_service/Dockerfile, built by `docker build` in the tests' engine and run there.

The engine is the one DOCKER_HOST names, or else a private dockerd (tools/oci/structure_test.py's). The test
loads //python:3.13-dev and //python:3.13-nonroot (amd64) as distroless/python:3.13-dev and
distroless/python:3.13-nonroot, prepares a build context whose wheels/ holds the example's locked amd64
wheels (the ones Bazel's downloader fetched for the python_wheels extension, each checked here against the
lock's sha256 and again by pip's --require-hashes), builds with the classic builder and no network, then
runs the image: its entrypoint serves on the container's loopback, and the answer must be exactly the JSON
that orjson and markupsafe's C extension compute. Figures (build time, size the app adds, start to first
response) are printed to the test log.

Inputs come from the environment (set by the py_test): DOCKERFILE, LOCK, APP_SRCS, WHEELS, DEV_LOAD,
RUNTIME_LOAD: runfiles paths (APP_SRCS and WHEELS space-separated).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tools.oci.structure_test import EngineError
from tools.python.dockerfile_build import ContextError, added_layers_gzip, engine, wheel_directory
from tools.python.requirements_lock_reader import parse_lock

IMAGE = "hello-service-dockerfile.invalid/hello_service:test"
# The tags the oci_load targets give the images; the Dockerfile's default DEV_IMAGE and RUNTIME_IMAGE.
DEV_TAG = "distroless/python:3.13-dev"
RUNTIME_TAG = "distroless/python:3.13-nonroot"


def build_context(directory: Path, dockerfile: Path, lock: Path, sources: list[Path], wheels: list[Path]) -> Path:
    """The Dockerfile's build context: Dockerfile, requirements.lock, hello_service/*.py and wheels/."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(dockerfile, directory / "Dockerfile")
    shutil.copyfile(lock, directory / "requirements.lock")
    (directory / "hello_service").mkdir()
    for source in sources:
        if source.parent.name != "hello_service":
            raise ContextError(f"{source}: expected a file of the hello_service package")
        shutil.copyfile(source, directory / "hello_service" / source.name)
    wheel_directory(lock, wheels, directory / "wheels")
    return directory


def paths(variable: str) -> list[Path]:
    value = os.environ.get(variable)
    if not value:
        raise RuntimeError(f"{variable} is not set; run this test with tools/bazel test //examples/hello_service:all")
    return [Path(item) for item in value.split()]


# Runs in the built container with its venv's python: queries the entrypoint's server, then starts a second
# server the same way (python3 -m hello_service) and times it from start to first response.
CLIENT = r"""
import json, os, subprocess, sys, time, urllib.request

def get(port):
    for attempt in range(200):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello?name=%3Cdistroless%3E", timeout=5) as response:
                return response.status, response.headers["Content-Type"], response.read().decode()
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing answered on 127.0.0.1:{port} within 10 s")

status, content_type, body = get(8080)
started = time.monotonic()
server = subprocess.Popen([sys.executable, "-m", "hello_service", "--host", "127.0.0.1", "--port", "8081"],
                          stderr=subprocess.DEVNULL)
try:
    get(8081)
    first_response = time.monotonic() - started
finally:
    server.terminate()
    server.wait(timeout=10)
import orjson, markupsafe._speedups
print(json.dumps({
    "status": status, "content_type": content_type, "body": body, "first_response": first_response,
    "executable": sys.executable, "interpreter": os.path.realpath(sys.executable), "prefix": sys.prefix,
    "orjson": orjson.__file__, "speedups": markupsafe._speedups.__file__, "uid": os.getuid(),
    "pip": __import__("importlib.util").util.find_spec("pip") is not None,
}))
"""


def expected_body(python_version: str, lock: Path) -> str:
    versions = {requirement.project: requirement.version for requirement in parse_lock(lock.read_text(), str(lock))}
    return json.dumps({
        "html": "&lt;b&gt;&lt;distroless&gt;&lt;/b&gt;",
        "machine": "x86_64",
        "message": "hello, <distroless>",
        "native_escape": True,
        "packages": {"markupsafe": versions["markupsafe"], "orjson": versions["orjson"]},
        "python": python_version,
        "squares": [0, 1, 4, 9, 16],
    }, separators=(",", ":"), sort_keys=True)


def test_wheel_directory_takes_exactly_the_locked_wheels(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    good, other = tmp_path / "in" / "demo_pkg-1.0-py3-none-any.whl", tmp_path / "in" / "demo_pkg-1.0-py2-none-any.whl"
    good.parent.mkdir()
    good.write_bytes(b"the locked wheel")
    other.write_bytes(b"a wheel the lock does not hash")
    lock.write_text(f"demo-pkg==1.0 --hash=sha256:{hashlib.sha256(b'the locked wheel').hexdigest()}\n")
    assert wheel_directory(lock, [good], tmp_path / "ok") == [good.name]
    assert (tmp_path / "ok" / good.name).read_bytes() == b"the locked wheel"
    with pytest.raises(ContextError, match="which .* does not list for demo-pkg"):
        wheel_directory(lock, [other], tmp_path / "bad")
    with pytest.raises(ContextError, match="no wheel for demo-pkg"):
        wheel_directory(lock, [], tmp_path / "none")
    with pytest.raises(ContextError, match="unknown is not in"):
        wheel_directory(lock, [good, tmp_path / "unknown-1.0-py3-none-any.whl"], tmp_path / "extra")
    assert not (tmp_path / "bad").exists() and not (tmp_path / "none").exists()
    # An entry for another machine is pip's to skip there: it needs no wheel here.
    lock.write_text(lock.read_text() + f'armonly==1.0 ; platform_machine == "aarch64" --hash=sha256:{"0" * 64}\n')
    assert wheel_directory(lock, [good], tmp_path / "marked") == [good.name]


def test_the_dockerfile_image_serves_json_from_the_dev_images_venv(tmp_path: Path) -> None:
    [lock] = paths("LOCK")
    [dockerfile] = paths("DOCKERFILE")
    context = build_context(tmp_path / "context", dockerfile, lock, paths("APP_SRCS"), paths("WHEELS"))
    print("build context:", sorted(str(path.relative_to(context)) for path in context.rglob("*") if path.is_file()))
    try:
        with engine() as docker:
            # The oci_load targets' scripts (`bazel run //python:3.13-dev_load`), which docker load their archives.
            for [script] in (paths("DEV_LOAD"), paths("RUNTIME_LOAD")):
                print(docker.execute([str(script)]).strip())
            started = time.monotonic()
            # The classic builder (BuildKit's buildx may be absent); --network=none: the build cannot fetch.
            docker.run("build", "--network=none", "--tag", IMAGE, str(context), timeout=600, env={"DOCKER_BUILDKIT": "0"})
            build_seconds = time.monotonic() - started
            container = f"hello-service-dockerfile-{os.getpid()}"
            try:
                docker.run("run", "--detach", "--network=none", "--name", container, IMAGE, "--host", "127.0.0.1", "--port", "8080")
                result = json.loads(docker.run("exec", container, "python3", "-c", CLIENT))
            finally:
                with contextlib.suppress(AssertionError):
                    print("container log:", docker.execute(["sh", "-c", f"docker logs {container} 2>&1"]).strip())
                docker.run("rm", "--force", container)
            inspect = {
                image: json.loads(docker.run("image", "inspect", image))[0] for image in (IMAGE, RUNTIME_TAG)
            }
            base_layers = len(inspect[RUNTIME_TAG]["RootFS"]["Layers"])
            added_gzip = added_layers_gzip(docker, IMAGE, base_layers, tmp_path)
            python_version = inspect[RUNTIME_TAG]["Config"]["Labels"]["python.version"]
            if os.environ.get("DOCKER_HOST"):  # a shared engine: leave no image behind (a private one is removed)
                docker.run("image", "rm", IMAGE)
    except EngineError as error:
        pytest.fail(str(error))

    assert inspect[IMAGE]["RootFS"]["Layers"][:base_layers] == inspect[RUNTIME_TAG]["RootFS"]["Layers"]
    assert (result["status"], result["content_type"]) == (200, "application/json")
    assert result["body"] == expected_body(python_version, lock)
    assert result["executable"] == "/venv/bin/python3"
    assert result["interpreter"] == "/usr/bin/python3.13"
    assert result["prefix"] == "/venv"
    assert result["orjson"] == "/venv/lib/python3.13/site-packages/orjson/__init__.py"
    assert result["speedups"] == "/venv/lib/python3.13/site-packages/markupsafe/_speedups.cpython-313-x86_64-linux-gnu.so"
    assert result["uid"] == 65532
    assert result["pip"] is False
    added = inspect[IMAGE]["Size"] - inspect[RUNTIME_TAG]["Size"]
    print(f"FIGURES: docker build {build_seconds:.1f} s; the app adds {added / 1e3:.1f} kB uncompressed, "
          f"{added_gzip / 1e3:.1f} kB gzip -6 ({base_layers} base layers + "
          f"{len(inspect[IMAGE]['RootFS']['Layers']) - base_layers}); image {inspect[IMAGE]['Size'] / 1e6:.1f} MB "
          f"uncompressed on a {inspect[RUNTIME_TAG]['Size'] / 1e6:.1f} MB base; start to first response "
          f"{result['first_response']:.2f} s")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"]))
