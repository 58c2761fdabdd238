#!/bin/sh
# dockerfile_test's launcher (tools/python/private/dockerfile.bzl), run from the runfiles directory:
# tools/python/dockerfile_test.py builds the Dockerfile in an engine and structure-tests the image.
exec {{tool}} {{arguments}}
