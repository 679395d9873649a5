"""`python -m devstack`: the whole relay on one machine, with one command and no setup.

Starts a throwaway Valkey (unless REDIS_URL is set), the Blockpass sandbox, a demo
webhook subscriber, then migrations, the web process and the worker, with prefixed
output. `python -m devstack --check` also runs the walkthrough and exits.

Nothing here is imported by the relay itself; it is a developer convenience.
"""
