"""Rule documentation in one shape, rules_oci's: a summary, then Behavior, Usage and Examples sections."""

def rule_doc(summary, behavior, usage, examples):
    """The doc string of a public rule.

    Args:
      summary: what the rule makes, in a sentence or two.
      behavior: what it does, and what it refuses.
      usage: how to build, run or test it, and the flags it takes.
      examples: Markdown: BUILD snippets in ```starlark fences, and how to run them.
    Returns:
      The doc, with each section under its underlined heading.
    """
    sections = [summary.strip()]
    for heading, text in [("Behavior", behavior), ("Usage", usage), ("Examples", examples)]:
        sections.append("%s\n%s\n\n%s" % (heading, "=" * len(heading), text.strip()))
    return "\n\n".join(sections) + "\n"
