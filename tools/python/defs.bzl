"""Public API: rules that put Python requirements and an application on the images, with the image's own Python,
and dockerfile_test for an image built from a Dockerfile on them.

Wheels come from the `python_wheels` module extension (//tools/python:extensions.bzl).
"""

load(
    "//tools/python/private:app.bzl",
    _py_app_image = "py_app_image",
    _py_app_layer = "py_app_layer",
    _py_requirements_lock = "py_requirements_lock",
    _py_wheels_layer = "py_wheels_layer",
)
load("//tools/python/private:dockerfile.bzl", _dockerfile_test = "dockerfile_test")

dockerfile_test = _dockerfile_test
py_app_image = _py_app_image
py_app_layer = _py_app_layer
py_requirements_lock = _py_requirements_lock
py_wheels_layer = _py_wheels_layer
