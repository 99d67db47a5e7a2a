"""The console's pure rules, one module per concern: no I/O, tested without a server."""
