#!/bin/sh
# tools/bazel: runs on the machine, where the user's docker config, credential helpers and keys are (HOST_LAUNCHER
# in tools/build_root.py); Bazel built it in the build root.
# oci_load's launcher (tools/oci/private/load.bzl), run from the runfiles directory. Docker's CLI picks the
# engine: DOCKER_HOST, else its default socket. Flags given to `bazel run` go to `docker load`.
# Without an engine, say how to get one instead of docker's "Cannot connect to the Docker daemon".
if ! command -v docker >/dev/null 2>&1; then
  echo "oci_load: there is no docker CLI on this machine to load the image with; install one (Debian: docker.io or docker-cli), or run the image without it: tools/bazel run <image>_run" >&2
  exit 1
fi
if ! docker info >/dev/null 2>&1; then
  echo "oci_load: no container engine answers (DOCKER_HOST=${DOCKER_HOST:-unset, so docker's default socket}). Start one: 'tools/bazel run //tools/oci:engine' in another terminal prints the DOCKER_HOST to export; or run the image without loading it: tools/bazel run <image>_run" >&2
  exit 1
fi
exec docker load --input {{archive}} "$@"
