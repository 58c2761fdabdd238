"""Public API: the `python_wheels` module extension (see tools/python/private/wheels.bzl)."""

load("//tools/python/private:wheels.bzl", _python_wheels = "python_wheels")

python_wheels = _python_wheels
