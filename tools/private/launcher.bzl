"""Launchers for `bazel run` and `bazel test`: a rule's `.sh.tpl` template, expanded with shell-quoted words.

Each rule that writes a launcher keeps its template beside it (`<rule>.sh.tpl`, named by a private
`_launcher` attribute) and fills its `{{placeholders}}` with `expand_launcher`; every word is single-quoted
for sh, so a path or argument holding spaces, quotes or `$` reaches the tool unchanged.
"""

def shell_quote(word):
    """`word` as one sh word: inside single quotes, where only ' itself needs writing as '\\''."""
    return "'" + word.replace("'", "'\\''") + "'"

def launcher_attr(template):
    """The private `_launcher` attribute: the rule's .sh.tpl template."""
    return attr.label(default = template, allow_single_file = [".sh.tpl"])

def expand_launcher(ctx, words):
    """Writes the executable NAME.sh from ctx.file._launcher.

    Args:
      ctx: the rule's context; it has a `_launcher` attribute (launcher_attr).
      words: placeholder ("{{name}}") -> list of words, each quoted with shell_quote and joined by spaces.
    Returns:
      The launcher File.
    """
    launcher = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.expand_template(
        template = ctx.file._launcher,
        output = launcher,
        substitutions = {placeholder: " ".join([shell_quote(word) for word in values]) for placeholder, values in words.items()},
        is_executable = True,
    )
    return launcher
