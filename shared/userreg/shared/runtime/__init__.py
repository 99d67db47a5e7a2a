"""What every long-running service is made of, once: the background-task lifecycle (`tasks`),
the reconnecting PostgreSQL LISTEN loop (`listen`) and the operations endpoints (`ops`)."""
