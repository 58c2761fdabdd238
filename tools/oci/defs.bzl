"""Public API: rules_oci-compatible rules implemented in this repository.

Attribute names follow rules_oci (and container_structure_test's) so users feel at home.
"""

load("//tools/oci/private:image.bzl", _oci_image = "oci_image", _oci_image_index = "oci_image_index")
load("//tools/oci/private:load.bzl", _oci_load = "oci_load")
load("//tools/oci/private:push.bzl", _oci_push = "oci_push", _oci_push_all = "oci_push_all")
load("//tools/oci/private:run.bzl", _oci_run = "oci_run")
load("//tools/oci/private:structure_test.bzl", _container_structure_test = "container_structure_test")
load("//tools/oci/private:verify.bzl", _oci_verify_all = "oci_verify_all")

oci_image = _oci_image
oci_image_index = _oci_image_index
container_structure_test = _container_structure_test
oci_push = _oci_push
oci_push_all = _oci_push_all
oci_load = _oci_load
oci_run = _oci_run
oci_verify_all = _oci_verify_all
