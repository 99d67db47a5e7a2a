"""What every long-running service is made of, once: the background-task lifecycle (`tasks`),
the reconnecting PostgreSQL LISTEN loop (`listen`), the operations endpoints (`ops`) and the
access log with request ids (`access`)."""
