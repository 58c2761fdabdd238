"""A launcher that prints its words, one per line, for the shell-quoting test (test_launcher.py)."""

load("//tools/private:launcher.bzl", "expand_launcher", "launcher_attr")

def _launcher_words_impl(ctx):
    expected = ctx.actions.declare_file(ctx.label.name + ".json")
    ctx.actions.write(expected, json.encode(ctx.attr.words))
    launcher = expand_launcher(ctx, {"{{words}}": ctx.attr.words})
    return [DefaultInfo(executable = launcher, files = depset([launcher, expected]), runfiles = ctx.runfiles(files = [expected]))]

launcher_words = rule(
    implementation = _launcher_words_impl,
    executable = True,
    attrs = {
        "words": attr.string_list(mandatory = True),
        "_launcher": launcher_attr("//tools/private/tests:print_words.sh.tpl"),
    },
)
