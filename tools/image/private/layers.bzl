"""Rules that make the image's own layers with the Python tools in tools/image."""

load("//tools/private:docs.bzl", "rule_doc")

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

_PY_STDLIB_PRUNE_DOC = rule_doc(
    summary = """Removes stdlib parts (or any paths) from a layer: `NAME.tar.gz`.""",
    behavior = """
Each `remove` entry is a path below the image root (a file, or a directory with everything in it) or an
fnmatch pattern. Every entry must match something: when a Debian package changes and a listed path is gone,
the build fails naming each one, so pruning never silently stops working. A hard link left pointing at a
removed file is an error too; a dangling symlink is a warning. What the images prune, and why: README.md,
"The pruned standard library".
""",
    usage = """
Give it the deb_layer holding the stdlib; use its output in place of that layer.
""",
    examples = """
```starlark
py_stdlib_prune(
    name = "3.13_amd64_src_python3.13",
    layer = ":3.13_amd64_src_python3.13_debs",
    remove = ["usr/lib/python3.13/turtle.py"],
)
```
""",
)

py_stdlib_prune = rule(
    implementation = _py_stdlib_prune_impl,
    doc = _PY_STDLIB_PRUNE_DOC,
    attrs = {
        "layer": attr.label(allow_single_file = True, mandatory = True, doc = "The layer holding the stdlib."),
        "remove": attr.string_list(default = DEFAULT_PRUNED, doc = "Paths or fnmatch patterns, relative to the image root; each must match something."),
        "_tool": _tool("prune_stdlib"),
    },
)

def _base_files_layer_impl(ctx):
    return _run_layer_tool(ctx, [], [], "BaseFiles", "Writing base files %{output}")

_BASE_FILES_LAYER_DOC = rule_doc(
    summary = """The base files every image holds, as distroless's: `NAME.tar.gz`.""",
    behavior = """
`/etc/passwd` and `/etc/group` (users root 0, nobody 65534 and nonroot 65532, with no login shell), a
files-only `/etc/nsswitch.conf`, `/root` and `/home/nonroot` (mode 700, each owned by its user) and `/tmp`
(1777). Deterministic; it takes no inputs.
""",
    usage = """
One per build is enough; put it first in an image's layers.
""",
    examples = """
```starlark
base_files_layer(name = "base_files")
```
""",
)

base_files_layer = rule(
    implementation = _base_files_layer_impl,
    doc = _BASE_FILES_LAYER_DOC,
    attrs = {"_tool": _tool("base_files")},
)

def _ld_so_cache_layer_impl(ctx):
    arguments = ["--architecture", ctx.attr.architecture] + _layer_arguments(ctx)
    return _run_layer_tool(ctx, arguments, ctx.files.layers, "LdSoCache", "Running the image's ldconfig for %{output}", LOCAL_ONLY)

_LD_SO_CACHE_LAYER_DOC = rule_doc(
    summary = """`/etc/ld.so.cache` for an image's libraries, written by the image's own ldconfig: `NAME.tar.gz`.""",
    behavior = """
The layers are unpacked as a container engine would apply them, and the image's `ldconfig` (from libc-bin)
runs chrooted into them, under the machine's static qemu when `architecture` is not the machine's, so
`ctypes.util.find_library()` works without a shell. It needs root and runs only where Bazel runs (never on
a remote worker); its result may be cached remotely.
""",
    usage = """
Give it every layer of the image that holds libraries; add its output after them.
""",
    examples = """
```starlark
ld_so_cache_layer(
    name = "3.13_arm64_ld_so_cache",
    layers = [":base_files", ":3.13_arm64_src_glibc", ":3.13_arm64_src_python3.13"],
    architecture = "arm64",
)
```
""",
)

ld_so_cache_layer = rule(
    implementation = _ld_so_cache_layer_impl,
    doc = _LD_SO_CACHE_LAYER_DOC,
    attrs = {
        "layers": _layers_attr("The image's layers, in order; one of them must hold libc-bin."),
        "architecture": _architecture_attr(),
        "_tool": _tool("ld_so_cache"),
    },
)

def _pyc_layer_impl(ctx):
    arguments = ["--python", ctx.attr.python, "--stdlib", ctx.attr.stdlib, "--architecture", ctx.attr.architecture]
    return _run_layer_tool(ctx, arguments + _layer_arguments(ctx), ctx.files.layers, "CompilePyc", "Byte-compiling the stdlib for %{output}", LOCAL_ONLY)

_PYC_LAYER_DOC = rule_doc(
    summary = """The stdlib's `.pyc` files, compiled by the image's own interpreter: `NAME.tar.gz`.""",
    behavior = """
The layers are unpacked and `python` runs chrooted into them (under qemu for another architecture) to
compile `stdlib` with unchecked-hash invalidation and `PYTHONHASHSEED=0`, so the files are the same on
every build. Only the `.pyc` files go into the layer. It needs root and runs only where Bazel runs.
""",
    usage = """
Give it the image's layers; add its output after them.
""",
    examples = """
```starlark
pyc_layer(
    name = "3.13_amd64_pyc",
    layers = [":base_files", ":3.13_amd64_src_glibc", ":3.13_amd64_src_python3.13"],
    python = "usr/bin/python3.13",
    stdlib = "usr/lib/python3.13",
)
```
""",
)

pyc_layer = rule(
    implementation = _pyc_layer_impl,
    doc = _PYC_LAYER_DOC,
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

_CA_BUNDLE_LAYER_DOC = rule_doc(
    summary = """`/etc/ssl/certs/ca-certificates.crt`, as the ca-certificates package's postinst would write it: `NAME.tar.gz`.""",
    behavior = """
Maintainer scripts never run, so the bundle is built here: every certificate the package ships (what its
postinst selects by default), concatenated in path order, with OpenSSL's default paths linked to it so
Python's ssl module finds it without SSL_CERT_FILE. Layers without certificates are an error.
""",
    usage = """
Give it the layer(s) holding ca-certificates; add its output after them.
""",
    examples = """
```starlark
ca_bundle_layer(
    name = "3.13_amd64_ca_bundle",
    layers = [":3.13_amd64_src_ca-certificates"],
)
```
""",
)

ca_bundle_layer = rule(
    implementation = _ca_bundle_layer_impl,
    doc = _CA_BUNDLE_LAYER_DOC,
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

_SYMLINKS_LAYER_DOC = rule_doc(
    summary = """A layer of symlinks only: `NAME.tar.gz`.""",
    behavior = """
Each entry becomes a symlink owned by root with the project's fixed mtime; missing parent directories
are added.
""",
    usage = """
Add its output to an image's layers.
""",
    examples = """
```starlark
symlinks_layer(
    name = "python_symlinks",
    symlinks = {"usr/bin/python3": "python3.13", "usr/bin/python": "python3.13"},
)
```
""",
)

symlinks_layer = rule(
    implementation = _symlinks_layer_impl,
    doc = _SYMLINKS_LAYER_DOC,
    attrs = {
        "symlinks": attr.string_dict(mandatory = True, doc = "Path inside the image -> link target."),
        "_tool": _tool("symlinks"),
    },
)
