"""greeter: says hello, from its own repository's image."""
