"""An image's and an app's `bazel run` and an app's `_push`, as a user runs them.

Each launcher is run as `bazel run` would, from the runfiles: with DOCKER_HOST set it uses that engine, else
it starts the private engine itself (as root, in the build root) and stops it.
1. //python:3.13_run: the container's output and exit status come through unchanged;
2. the app's arm64 image (//examples/hello_service:hello_service_arm64_run) runs under emulation;
3. the app's `_run -- --publish PORT -- --port PORT`, amd64 (the container on the machine's network) and
   arm64 (in the emulating engine's own network namespace, relayed): the service answers a real request on
   the machine's 127.0.0.1:PORT, and stopping the launcher (SIGTERM, as Ctrl-C) stops it; then the same
   through DOCKER_HOST naming an engine like `tools/bazel run //tools/oci:engine`'s (no bridge network);
4. the app's `_push` to a docker-registry on 127.0.0.1 that asks for credentials: refused without them,
   then, logged in with `crane auth login` (a DOCKER_CONFIG outside the checkout), the pushed index's digest
   is the built one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tools.oci.tests.local_registry import crane_login, free_port, running_registry
from tools.oci.structure_test import private_engine

APP_RUN = os.environ["APP_RUN"]
APP_PUSH = os.environ["APP_PUSH"]
APP_INDEX = os.environ["APP_INDEX"]


def run(launcher: str, *arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    result = subprocess.run([launcher, *arguments], capture_output=True, text=True, check=False, timeout=600, env=env)
    print(f"$ {launcher} {' '.join(arguments)}: exit {result.returncode} in {time.monotonic() - started:.1f} s\n"
          f"{result.stdout}{result.stderr}", file=sys.stderr, flush=True)
    return result


def get(url: str, timeout: float) -> tuple[int, dict]:
    """The first answer to GET `url` within `timeout` seconds (the server is starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, json.loads(response.read())
        except (urllib.error.URLError, ConnectionError) as error:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing answered {url} within {timeout:.0f} s ({error})") from None
            time.sleep(0.2)


def check_published_service(launcher: str, machine: str, docker_host: str = "") -> None:
    port = free_port()
    started = time.monotonic()
    env = dict(os.environ, DOCKER_HOST=docker_host) if docker_host else None
    process = subprocess.Popen([launcher, "--publish", str(port), "--", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        status, body = get(f"http://127.0.0.1:{port}/hello?name=machine", timeout=90)
        answered = time.monotonic() - started
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
        print(f"$ {launcher} --publish {port} -- --port {port}: exit {process.returncode}\n{output}", file=sys.stderr)
    assert (status, body["message"], body["machine"]) == (200, "hello, machine", machine), body
    assert f"run: serving on http://127.0.0.1:{port}/" in output
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=2)
        raise AssertionError(f"127.0.0.1:{port} still answers after the launcher stopped")
    except urllib.error.URLError:
        pass
    print(f"FIGURES: {Path(launcher).name} --publish: launcher start to first answer on 127.0.0.1 {answered:.1f} s",
          file=sys.stderr)


def check_push() -> None:
    built = json.loads(Path(APP_INDEX, "index.json").read_text())["manifests"][0]["digest"]
    config = Path(os.environ["TEST_TMPDIR"], "docker")  # outside the checkout, as a user's ~/.docker
    config.mkdir()
    env = dict(os.environ, DOCKER_CONFIG=str(config))
    with running_registry(with_auth=True) as registry:
        repository = f"{registry}/apps/hello_service"
        refused = run(APP_PUSH, "--repository", repository, env=env)
        assert refused.returncode == 1, "a push without credentials succeeded"
        assert f"{registry} asks for credentials" in refused.stderr, "the refusal does not say credentials are missing"
        crane_login(registry, env=env)
        started = time.monotonic()
        pushed = run(APP_PUSH, "--repository", repository, env=env)
        seconds = time.monotonic() - started
        assert pushed.returncode == 0, "hello_service_push failed with credentials"
        remote = subprocess.run(["crane", "digest", f"{repository}:latest"], capture_output=True, text=True,
                                check=True, env=env).stdout.strip()
    assert remote == built, f"the registry's hello_service:latest is {remote}, the built index {built}"
    print(f"FIGURES: hello_service_push to an authenticated registry {seconds:.1f} s; {remote}", file=sys.stderr)


def main() -> int:
    printed = run("python/3.13_run.sh", "-c", "import os, platform; print(6 * 7, platform.machine(), os.getuid())")
    assert printed.returncode == 0, "//python:3.13_run failed"
    assert printed.stdout == "42 x86_64 0\n", f"unexpected output {printed.stdout!r}"

    failed = run("python/3.13_run.sh", "-c", "raise SystemExit(3)")
    assert failed.returncode == 3, f"the container's exit status 3 came back as {failed.returncode}"

    app = run("examples/hello_service/hello_service_arm64_run.sh", "--help")
    assert app.returncode == 0, "//examples/hello_service:hello_service_arm64_run -- --help failed"
    assert app.stdout.startswith("usage: "), f"the app's usage is missing: {app.stdout!r}"

    check_published_service(APP_RUN, "x86_64")
    check_published_service("examples/hello_service/hello_service_arm64_run.sh", "aarch64")
    if not os.environ.get("DOCKER_HOST"):
        # A lasting engine under DOCKER_HOST, configured as `tools/bazel run //tools/oci:engine`'s (no bridge network).
        with private_engine() as docker_host:
            check_published_service(APP_RUN, "x86_64", docker_host)
    check_push()
    print("image_run_test: the base image and the app's images ran, the app served on 127.0.0.1, its _push "
          "reached the authenticated registry with the built digest")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
