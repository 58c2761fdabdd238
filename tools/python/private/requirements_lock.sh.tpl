#!/bin/sh
# py_requirements_lock's launcher (tools/python/private/app.bzl), run from the runfiles directory: it
# (re)writes the lock with tools/python/requirements_lock_writer.py. Flags given to `bazel run` come after the rule's.
exec {{tool}} {{arguments}} "$@"
