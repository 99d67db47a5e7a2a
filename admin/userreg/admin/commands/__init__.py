"""One module per command group; each has `register(commands)` that adds its parser, whose
`handler(args, settings)` coroutine returns what to print as JSON (or None)."""
