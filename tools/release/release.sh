#!/bin/sh
# tools/bazel: runs on the machine, where the user's docker config, credential helpers and keys are (HOST_LAUNCHER
# in tools/build_root.py); Bazel built it in the build root.
# //:release's launcher, run from the runfiles directory: tools/release/release.py with the machine's python3,
# the index table from the BUILD file's args, then the user's flags.
exec env PYTHONPATH=. python3 -m tools.release.release "$@"
