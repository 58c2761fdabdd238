#!/bin/sh
# container_structure_test's launcher (tools/oci/private/structure_test.bzl), run from the runfiles directory:
# tools/oci/structure_test.py finds an engine and runs container-structure-test with the rule's configs.
exec {{runner}} {{arguments}}
