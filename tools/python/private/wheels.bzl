"""The `python_wheels` module extension: one repository per locked wheel per architecture, and a hub per lock.

    python_wheels = use_extension("//tools/python:extensions.bzl", "python_wheels")
    python_wheels.lock(
        name = "hello_service_wheels",
        lock = "//examples/hello_service:requirements.lock",
        python_version = "3.13",
        architectures = ["amd64", "arm64"],
    )
    use_repo(python_wheels, "hello_service_wheels")

`@hello_service_wheels//:amd64` is then every requirement's wheel for linux/amd64. Each wheel repository
reads the project's page on the configured index (tools/python/index_url.py: PIP_INDEX_URL, pip's
configuration, or pip's default; `--repo_env=PIP_INDEX_URL=...` overrides it for Bazel alone), picks the
locked files that fit the platform by their names (tools/python/select_wheels.py), and downloads them with
Bazel's downloader against their locked sha256, so the repository cache and --distdir serve them again.
"""

# The kernel's machine names, as the lock's platform_machine markers spell them.
_MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}

def _tools_root(ctx):
    return str(ctx.path(Label("//:MODULE.bazel")).dirname)

def _run_tool(ctx, module, arguments, what):
    """Runs one of tools/python's modules with the build's python3; fails with its message."""
    result = ctx.execute(
        ["python3", "-B", "-m", module] + arguments,
        environment = {"PYTHONPATH": _tools_root(ctx), "PYTHONDONTWRITEBYTECODE": "1"},
        timeout = 120,
    )
    if result.return_code != 0:
        fail("%s: %s" % (what, (result.stderr or result.stdout).strip()))
    return result.stdout

def _download(rctx, url, output, what, sha256 = "", direct = True):
    """Bazel's downloader, unless the extension found that it cannot reach the index (its Java TLS stack may
    not trust a proxy's CA that the machine's CA bundle holds): then python3 fetches and checks the file, and
    Bazel's downloader takes it from a file:// URL against the same sha256, so it still goes through the
    repository cache. The extension says once which path is used, so nothing is printed per file."""
    if direct:
        if sha256:
            result = rctx.download(url = url, output = output, sha256 = sha256, allow_fail = True)
        else:
            result = rctx.download(url = url, output = output, allow_fail = True)
        if result.success:
            return
    fetched = output + ".fetched"
    _run_tool(rctx, "tools.python.fetch", [url, str(rctx.path(fetched))] + (["--sha256", sha256] if sha256 else []), what)
    if not sha256:
        rctx.execute(["mv", str(rctx.path(fetched)), str(rctx.path(output))])
        return
    rctx.download(url = "file://" + str(rctx.path(fetched)), output = output, sha256 = sha256)
    rctx.delete(fetched)

def _wheel_repository_impl(rctx):
    requirement = json.encode({
        "name": rctx.attr.requirement_name,
        "project": rctx.attr.project,
        "version": rctx.attr.version,
        "hashes": rctx.attr.hashes,
        "line": rctx.attr.line,
    })
    what = "%s==%s for linux/%s (from %s)" % (rctx.attr.requirement_name, rctx.attr.version, rctx.attr.architecture, rctx.attr.lock)
    page_url = rctx.attr.index_url.rstrip("/") + "/" + rctx.attr.project + "/"
    local = json.decode(rctx.attr.local_wheels)
    page = []
    if [digest for digest in rctx.attr.hashes if digest not in [wheel["sha256"] for wheel in local]]:
        _download(rctx, page_url, "index_page", what + ": reading the index page %s (check PIP_INDEX_URL or pip's index configuration, or pass --repo_env=PIP_INDEX_URL=URL)" % page_url, direct = rctx.attr.direct_download)
        page = ["--index-page", str(rctx.path("index_page"))]
    chosen = json.decode(_run_tool(rctx, "tools.python.select_wheels", page + [
        "--local-wheels",
        rctx.attr.local_wheels,
        "--page-url",
        page_url,
        "--requirement",
        requirement,
        "--python-version",
        rctx.attr.python_version,
        "--architecture",
        rctx.attr.architecture,
    ], what))
    if page:
        rctx.delete("index_page")
    for wheel in chosen:
        direct = rctx.attr.direct_download or wheel["url"].startswith("file:")
        _download(rctx, wheel["url"], "wheels/" + wheel["filename"], "%s: downloading %s" % (what, wheel["filename"]), wheel["sha256"], direct)
    rctx.file("BUILD.bazel", "\n".join([
        "filegroup(",
        "    name = \"wheels\",",
        "    srcs = %s," % json.encode(["wheels/" + wheel["filename"] for wheel in chosen]),
        "    visibility = [\"//visibility:public\"],",
        ")",
        "",
    ]))

wheel_repository = repository_rule(
    implementation = _wheel_repository_impl,
    doc = "The locked wheels of one requirement that fit one platform, downloaded against their sha256.",
    attrs = {
        "requirement_name": attr.string(mandatory = True),
        "project": attr.string(mandatory = True, doc = "The normalized project name: its page on the index."),
        "version": attr.string(mandatory = True),
        "hashes": attr.string_list(mandatory = True, doc = "The lock's sha256 hashes for the requirement."),
        "line": attr.int(),
        "lock": attr.string(doc = "The lock's label, for messages."),
        "architecture": attr.string(mandatory = True, values = ["amd64", "arm64"]),
        "python_version": attr.string(mandatory = True),
        "index_url": attr.string(mandatory = True),
        "local_wheels": attr.string(default = "[]", doc = "JSON: the lock's wheelhouse wheels (filename, path, sha256) with this requirement's hashes."),
        "direct_download": attr.bool(default = True, doc = "False when Bazel's downloader cannot reach the index: python3 fetches."),
    },
)

def _hub_repository_impl(rctx):
    lines = []
    for architecture, repositories in sorted(rctx.attr.wheels.items()):
        lines += [
            "filegroup(",
            "    name = \"%s\"," % architecture,
            "    srcs = %s," % json.encode(["@%s//:wheels" % repository for repository in repositories]),
            "    visibility = [\"//visibility:public\"],",
            ")",
            "",
        ]
    rctx.file("BUILD.bazel", "\n".join(lines))

hub_repository = repository_rule(
    implementation = _hub_repository_impl,
    doc = "Per architecture, a filegroup of every locked requirement's wheels.",
    attrs = {"wheels": attr.string_list_dict(doc = "architecture -> the wheel repositories")},
)

def _repository_name(hub, project, architecture):
    return "%s__%s__%s" % (hub, project.replace("-", "_").replace(".", "_"), architecture)

_lock_tag = tag_class(
    doc = "A hash-pinned requirements lock (pip's --require-hashes format) to download wheels for.",
    attrs = {
        "name": attr.string(mandatory = True, doc = "The hub repository: `@NAME//:<architecture>` holds the wheels."),
        "lock": attr.label(mandatory = True, doc = "The lock, e.g. written by a py_requirements_lock target."),
        "python_version": attr.string(mandatory = True, doc = "The images' Python version, e.g. 3.13."),
        "architectures": attr.string_list(default = ["amd64", "arm64"], doc = "The images' architectures."),
    },
)

def _downloader_reaches(module_ctx, index_url):
    """Whether Bazel's own downloader can read the index (one try, so a failure prints one warning, not one per file)."""
    probe = module_ctx.download(url = index_url.rstrip("/") + "/pip/", output = "probe_index_page", allow_fail = True)
    if probe.success:
        module_ctx.delete("probe_index_page")
        return True

    # buildifier: disable=print
    print("NOTE: Bazel's downloader cannot reach the Python package index (commonly its Java TLS stack does not trust a proxy's CA that this machine's CA bundle holds); the wheels are fetched with python3 (the machine's CA bundle, or PIP_CERT), checked against the lock's sha256, and stored in Bazel's repository cache as usual")
    return False

def _python_wheels_impl(module_ctx):
    index_url = _run_tool(module_ctx, "tools.python.index_url", [], "finding the Python package index").strip()
    direct = None
    for module in module_ctx.modules:
        for lock in module.tags.lock:
            lock_path = module_ctx.path(lock.lock)
            data = json.decode(_run_tool(module_ctx, "tools.python.requirements_lock_reader", [str(lock_path)], "reading %s" % lock.lock))
            if data["input"] and hasattr(module_ctx, "watch"):
                # A changed requirements file re-runs this, and the stale check then fails the build.
                module_ctx.watch(data["input"])
            wheels = {}
            for architecture in lock.architectures:
                wheels[architecture] = []
                for requirement in data["requirements"]:
                    if requirement["machines"] and _MACHINES[architecture] not in requirement["machines"]:
                        continue
                    local = [wheel for wheel in data["wheelhouse"] if wheel["sha256"] in requirement["hashes"]]
                    # Only the root module's locks are probed for: a dependency's examples are seldom fetched.
                    if direct == None and module.is_root and len(local) < len(requirement["hashes"]):
                        direct = _downloader_reaches(module_ctx, index_url)
                    name = _repository_name(lock.name, requirement["project"], architecture)
                    wheel_repository(
                        name = name,
                        requirement_name = requirement["name"],
                        project = requirement["project"],
                        version = requirement["version"],
                        hashes = requirement["hashes"],
                        line = requirement["line"],
                        lock = str(lock.lock),
                        architecture = architecture,
                        python_version = lock.python_version,
                        index_url = index_url,
                        local_wheels = json.encode(local),
                        direct_download = direct != False,
                    )
                    wheels[architecture].append(name)
            hub_repository(name = lock.name, wheels = wheels)

python_wheels = module_extension(
    implementation = _python_wheels_impl,
    tag_classes = {"lock": _lock_tag},
    environ = ["PIP_INDEX_URL"],
)
