#!/bin/sh
# tools/bazel: runs on the machine, where the user's docker config, credential helpers and keys are (HOST_LAUNCHER
# in tools/build_root.py); Bazel built it in the build root.
# oci_verify_all's launcher (tools/oci/private/verify.bzl), run from the runfiles directory.
# The flags given to `bazel run` ("$@") come last: --repository and --key.
exec {{verify}} {{arguments}} "$@"
