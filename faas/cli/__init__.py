"""The `faas` command and what runs in its process: the gateway client, `faas top`, the source
watcher, scaffolding, compose. It talks to the gateway over HTTP and never imports the invoke room.
"""
