"""Public API for Debian packages: turn locked .debs into image layers."""

load("//tools/debian/private:deb_layer.bzl", _deb_closure = "deb_closure", _deb_layer = "deb_layer")

deb_layer = _deb_layer
deb_closure = _deb_closure
