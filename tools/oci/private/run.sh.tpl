#!/bin/sh
# oci_run's launcher (tools/oci/private/run.bzl), run from the runfiles directory in the build root, where a
# private engine can be started as root when DOCKER_HOST names none. Flags given to `bazel run` after `--`
# are the container's arguments.
exec {{run}} {{arguments}} -- "$@"
