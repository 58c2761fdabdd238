"""Debian's docker-registry on 127.0.0.1, with or without htpasswd authentication, for the tests that push to a
real registry (//tests:push_test, //tests:image_run_test's app push, //tools/release:release_e2e_test). Started
and stopped by the test; credentials are where a user's are, outside the checkout.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator


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
    if not shutil.which("docker-registry"):
        raise AssertionError("docker-registry is not on PATH: it is in tools/bazel's build root (Debian's "
                             "docker-registry); run the test with tools/bazel")
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


def crane_login(address: str, password: str = PASSWORD, env: dict[str, str] | None = None) -> None:
    """What a user does once on the machine: `crane auth login` writes the docker config DOCKER_CONFIG names."""
    subprocess.run(["crane", "auth", "login", address, "-u", USER, "-p", password], check=True, capture_output=True,
                   env=env)
