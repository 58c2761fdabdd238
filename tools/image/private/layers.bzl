"""Rules that make the image's own layers with the Python tools in tools/image."""

# Actions that run the image's own programs chrooted into its layers (as root, in a private mount namespace),
# under the build root's static qemu for arm64: they need root and the build root's qemu, which a remote
# worker need not offer, so they always run where Bazel runs. Their results still go to a remote cache.
LOCAL_ONLY = {"no-remote-exec": "1"}

def _run_layer_tool(ctx, arguments, inputs, mnemonic, message, execution_requirements = {}):
    out = ctx.actions.declare_file(ctx.label.name + ".tar.gz")
    args = ctx.actions.args()
    args.add("--output", out)
    args.add_all(arguments)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = inputs,
        outputs = [out],
        mnemonic = mnemonic,
        progress_message = message,
        execution_requirements = execution_requirements,
    )
    return [DefaultInfo(files = depset([out]))]

def _layer_arguments(ctx):
    return [argument for layer in ctx.files.layers for argument in ["--layer", layer.path]]

def _tool(name):
    return attr.label(default = "//tools/image:" + name, executable = True, cfg = "exec")

# The image's architecture: the tools run the image's own programs, under qemu when it is not the machine's.
def _architecture_attr():
    return attr.string(
        default = "amd64",
        values = ["amd64", "arm64", "riscv64"],
        doc = "The image's architecture; when it differs from the machine's, the image's programs run under the machine's static qemu-user emulator.",
    )

def _layers_attr(doc):
    return attr.label_list(allow_files = [".tar", ".tar.gz", ".tar.zst"], mandatory = True, doc = doc)

# The stdlib parts a server image has no use for; why each goes: README.md, "The pruned standard library".
DEFAULT_PRUNED = [
    "usr/lib/python*/idlelib",
    "usr/lib/python*/ensurepip",
    "usr/lib/python*/lib2to3",
    "usr/bin/2to3-*",
    "usr/lib/python*/tkinter",
    "usr/lib/python*/turtle.py",
    "usr/lib/python*/turtledemo",
]

def _py_stdlib_prune_impl(ctx):
    arguments = ["--input", ctx.file.layer.path]
    for path in ctx.attr.remove:
        arguments += ["--remove", path]
    return _run_layer_tool(ctx, arguments, [ctx.file.layer], "PyStdlibPrune", "Pruning the stdlib in %{output}")

py_stdlib_prune = rule(
    implementation = _py_stdlib_prune_impl,
    doc = "Removes stdlib parts from a layer; fails if a listed path is missing, so pruning never silently stops working.",
    attrs = {
        "layer": attr.label(allow_single_file = True, mandatory = True, doc = "The layer holding the stdlib."),
        "remove": attr.string_list(default = DEFAULT_PRUNED, doc = "Paths or fnmatch patterns, relative to the image root; each must match something."),
        "_tool": _tool("prune_stdlib"),
    },
)

def _base_files_layer_impl(ctx):
    return _run_layer_tool(ctx, [], [], "BaseFiles", "Writing base files %{output}")

base_files_layer = rule(
    implementation = _base_files_layer_impl,
    doc = "/etc/passwd, /etc/group (root, nobody, nonroot), nsswitch.conf, /root, /home/nonroot and /tmp.",
    attrs = {"_tool": _tool("base_files")},
)

def _ld_so_cache_layer_impl(ctx):
    arguments = ["--architecture", ctx.attr.architecture] + _layer_arguments(ctx)
    return _run_layer_tool(ctx, arguments, ctx.files.layers, "LdSoCache", "Running the image's ldconfig for %{output}", LOCAL_ONLY)

ld_so_cache_layer = rule(
    implementation = _ld_so_cache_layer_impl,
    doc = "/etc/ld.so.cache for the image's libraries, written by the image's own ldconfig.",
    attrs = {
        "layers": _layers_attr("The image's layers, in order; one of them must hold libc-bin."),
        "architecture": _architecture_attr(),
        "_tool": _tool("ld_so_cache"),
    },
)

def _pyc_layer_impl(ctx):
    arguments = ["--python", ctx.attr.python, "--stdlib", ctx.attr.stdlib, "--architecture", ctx.attr.architecture]
    return _run_layer_tool(ctx, arguments + _layer_arguments(ctx), ctx.files.layers, "CompilePyc", "Byte-compiling the stdlib for %{output}", LOCAL_ONLY)

pyc_layer = rule(
    implementation = _pyc_layer_impl,
    doc = "The stdlib's .pyc files (unchecked-hash), compiled by the image's own interpreter.",
    attrs = {
        "layers": _layers_attr("The image's layers, in order."),
        "architecture": _architecture_attr(),
        "python": attr.string(mandatory = True, doc = "The interpreter inside the image, e.g. usr/bin/python3.9."),
        "stdlib": attr.string(mandatory = True, doc = "The stdlib directory inside the image, e.g. usr/lib/python3.9."),
        "_tool": _tool("compile_pyc"),
    },
)

def _ca_bundle_layer_impl(ctx):
    return _run_layer_tool(ctx, _layer_arguments(ctx), ctx.files.layers, "CaBundle", "Writing the CA bundle %{output}")

ca_bundle_layer = rule(
    implementation = _ca_bundle_layer_impl,
    doc = "/etc/ssl/certs/ca-certificates.crt from the ca-certificates package, as its postinst would write it.",
    attrs = {
        "layers": _layers_attr("Layers holding the ca-certificates package."),
        "_tool": _tool("ca_bundle"),
    },
)

def _symlinks_layer_impl(ctx):
    arguments = []
    for path, target in sorted(ctx.attr.symlinks.items()):
        arguments += ["--symlink", "%s=%s" % (path, target)]
    return _run_layer_tool(ctx, arguments, [], "Symlinks", "Writing symlinks %{output}")

symlinks_layer = rule(
    implementation = _symlinks_layer_impl,
    doc = "A layer of symlinks only.",
    attrs = {
        "symlinks": attr.string_dict(mandatory = True, doc = "Path inside the image -> link target."),
        "_tool": _tool("symlinks"),
    },
)
