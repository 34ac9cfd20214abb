"""Packages, versions and state: what a deploy writes and what the registry reads.

In the gateway worker: the package store and SQLite state (store.py), which version is live
(registry.py), the no-drop switch (deploys.py), the upload folder (incoming.py). Shared with
the CLI: zipping and validating a folder (packages.py), reading SAM templates (sam.py).
"""
