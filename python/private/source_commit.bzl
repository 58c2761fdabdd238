"""The `source_commit` module extension: @source_commit//:source.json, the commit the checkout is at.

git is not in the build root, so HEAD, the ref it names and packed-refs are read as plain files (a `git
worktree` checkout's .git file leads to its git directory and the common one), and watched: a new commit or
checkout refetches this repository, and only what depends on it (the provenance predicates) is rebuilt. A
checkout without .git, or one that cannot be read, records the commit as unknown with the reason, instead of
failing the build. Uncommitted changes are not seen: the commit is HEAD's.
"""

_HEX = "0123456789abcdef"

def _is_commit(text):
    return len(text) in (40, 64) and all([character in _HEX for character in text.elems()])

def _read(rctx, path):
    """The file's text (watched), or None when it does not exist (watched too, so its creation is seen)."""
    rctx.watch(path)
    if not path.exists or path.is_dir:
        return None
    return rctx.read(path, watch = "yes")

def _packed_ref(text, ref):
    for line in text.splitlines():
        fields = line.strip().split(" ")
        if len(fields) == 2 and fields[1] == ref and _is_commit(fields[0]):
            return fields[0]
    return None

def _find_commit(rctx, workspace):
    """(commit, reason): the commit HEAD names, or None and why it is unknown."""
    dot_git = workspace.get_child(".git")
    rctx.watch(dot_git)
    if not dot_git.exists:
        return None, "the checkout has no .git (not a git clone)"
    git_directory = dot_git
    if not dot_git.is_dir:
        text = rctx.read(dot_git, watch = "yes").strip()
        if not text.startswith("gitdir:"):
            return None, ".git is a file without a 'gitdir:' line"
        named = text[len("gitdir:"):].strip()
        git_directory = rctx.path(named) if named.startswith("/") else workspace.get_child(named)
    head = _read(rctx, git_directory.get_child("HEAD"))
    if head == None:
        return None, "%s/HEAD is missing or not readable here" % git_directory
    head = head.strip()
    if _is_commit(head):
        return head, None  # a detached HEAD
    if not head.startswith("ref: "):
        return None, "%s/HEAD holds neither a commit nor a ref" % git_directory
    ref = head[len("ref: "):].strip()
    common = git_directory
    commondir = _read(rctx, git_directory.get_child("commondir"))
    if commondir != None:
        relative = commondir.strip()
        common = rctx.path(relative) if relative.startswith("/") else git_directory.get_child(relative)
    for directory in [git_directory, common]:
        loose = _read(rctx, directory.get_child(ref))
        if loose != None and _is_commit(loose.strip()):
            return loose.strip(), None
    packed = _read(rctx, common.get_child("packed-refs"))
    if packed != None and _packed_ref(packed, ref) != None:
        return _packed_ref(packed, ref), None
    return None, "HEAD names %s, which has no commit yet" % ref

def _source_commit_repository_impl(rctx):
    workspace = rctx.path(Label("//:MODULE.bazel")).dirname
    commit, reason = _find_commit(rctx, workspace)
    rctx.file("source.json", json.encode({"commit": commit or "", "unknown_because": reason or ""}) + "\n")
    rctx.file("BUILD.bazel", 'exports_files(["source.json"], visibility = ["//visibility:public"])\n')

_source_commit_repository = repository_rule(
    implementation = _source_commit_repository_impl,
    doc = "source.json: {\"commit\": HEAD's commit or \"\", \"unknown_because\": why it is unknown, or \"\"}.",
)

def _source_commit_impl(_module_ctx):
    _source_commit_repository(name = "source_commit")

source_commit = module_extension(
    implementation = _source_commit_impl,
    doc = "Makes @source_commit, the checkout's commit for the provenance predicates.",
)
