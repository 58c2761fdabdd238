"""stardoc's Markdown renderer, run with the build root's own Java.

stardoc's own `renderer` target is a rules_java `java_binary`, whose Java toolchain (java_tools, a remote JDK)
Bazel would download; the build root has neither, but it has Debian's Java runtime (a dependency of
bazel-stardoc), and Debian's bazel-stardoc ships the renderer as one self-contained jar. This rule runs that
jar with `java -jar`.
"""

def _stardoc_renderer_impl(ctx):
    launcher = ctx.actions.declare_file(ctx.label.name + ".sh")

    # The jar is in the launcher's runfiles: `../REPO/PATH` for a file of another repository.
    jar = ctx.file.jar.short_path
    jar = jar[len("../"):] if jar.startswith("../") else ctx.workspace_name + "/" + jar
    ctx.actions.write(
        output = launcher,
        content = "#!/bin/sh\nexec java -jar \"$0.runfiles/%s\" \"$@\"\n" % jar,
        is_executable = True,
    )
    return [DefaultInfo(executable = launcher, runfiles = ctx.runfiles(files = [ctx.file.jar]))]

stardoc_renderer = rule(
    implementation = _stardoc_renderer_impl,
    doc = "An executable that runs stardoc's renderer jar with the `java` on PATH, for stardoc's `renderer`.",
    attrs = {
        "jar": attr.label(allow_single_file = [".jar"], mandatory = True, doc = "The renderer's deploy jar."),
    },
    executable = True,
)
