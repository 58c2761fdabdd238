#!/bin/sh
# oci_verify_all's launcher (tools/oci/private/verify.bzl), run from the runfiles directory.
# The flags given to `bazel run` ("$@") come last: --repository and --key.
exec {{verify}} {{arguments}} "$@"
