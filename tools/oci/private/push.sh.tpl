#!/bin/sh
# tools/bazel: runs on the machine, where the user's docker config, credential helpers and keys are (HOST_LAUNCHER
# in tools/build_root.py); Bazel built it in the build root.
# oci_push's and oci_push_all's launcher (tools/oci/private/push.bzl), run from the runfiles directory.
# The flags given to `bazel run` ("$@") come last, so -r/--repository and -t/--tag override the rule's values.
exec {{push}} {{arguments}} "$@"
