#!/bin/sh
# tools/bazel: runs on the machine, where the user's docker config, credential helpers and keys are (HOST_LAUNCHER
# in tools/build_root.py); Bazel built it in the build root.
# oci_load's launcher (tools/oci/private/load.bzl), run from the runfiles directory. Docker's CLI picks the
# engine: DOCKER_HOST, else its default socket. Flags given to `bazel run` go to `docker load`.
exec docker load --input {{archive}} "$@"
