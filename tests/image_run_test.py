"""`bazel run` of an image (oci_run) runs it: the base image with arguments, and an app's arm64 image under emulation.

Each launcher is run as `bazel run` would, from the runfiles: with DOCKER_HOST set it uses that engine, else
it starts the private engine itself (as root, in the build root) and stops it. The container's output and
exit status must come through unchanged.
"""

from __future__ import annotations

import subprocess
import sys
import time


def run(launcher: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    result = subprocess.run([launcher, *arguments], capture_output=True, text=True, check=False, timeout=600)
    print(f"$ {launcher} {' '.join(arguments)}: exit {result.returncode} in {time.monotonic() - started:.1f} s\n"
          f"{result.stdout}{result.stderr}", file=sys.stderr, flush=True)
    return result


def main() -> int:
    printed = run("python/3.13_run.sh", "-c", "import os, platform; print(6 * 7, platform.machine(), os.getuid())")
    assert printed.returncode == 0, "//python:3.13_run failed"
    assert printed.stdout == "42 x86_64 0\n", f"unexpected output {printed.stdout!r}"

    failed = run("python/3.13_run.sh", "-c", "raise SystemExit(3)")
    assert failed.returncode == 3, f"the container's exit status 3 came back as {failed.returncode}"

    app = run("examples/hello_service/hello_service_arm64_run.sh", "--help")
    assert app.returncode == 0, "//examples/hello_service:hello_service_arm64_run -- --help failed"
    assert app.stdout.startswith("usage: "), f"the app's usage is missing: {app.stdout!r}"
    print("image_run_test: the base image and the app's arm64 image ran, output and exit status passed through")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
