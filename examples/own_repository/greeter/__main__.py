"""Greets someone.

Usage:
  greeter [--name=NAME] [--shout]

Options:
  --name=NAME  Who to greet [default: world].
  --shout      In capitals.
"""

from __future__ import annotations

from docopt import docopt


def main() -> None:
    options = docopt(__doc__)
    greeting = f"hello, {options['--name']}"
    print(greeting.upper() if options["--shout"] else greeting)


if __name__ == "__main__":
    main()
