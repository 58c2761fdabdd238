"""Public API: rules that make an image's own layers (base files, pruning, caches)."""

load(
    "//tools/image/private:layers.bzl",
    _DEFAULT_PRUNED = "DEFAULT_PRUNED",
    _base_files_layer = "base_files_layer",
    _ca_bundle_layer = "ca_bundle_layer",
    _ld_so_cache_layer = "ld_so_cache_layer",
    _py_stdlib_prune = "py_stdlib_prune",
    _pyc_layer = "pyc_layer",
    _symlinks_layer = "symlinks_layer",
)

DEFAULT_PRUNED = _DEFAULT_PRUNED
base_files_layer = _base_files_layer
ca_bundle_layer = _ca_bundle_layer
ld_so_cache_layer = _ld_so_cache_layer
py_stdlib_prune = _py_stdlib_prune
pyc_layer = _pyc_layer
symlinks_layer = _symlinks_layer
