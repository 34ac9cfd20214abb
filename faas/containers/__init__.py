"""The container engine and images: the only room that imports docker.

The executor interface (executor.py) is what the invoke room sees; docker_executor.py is its
one real implementation. engine.py finds or starts dockerd; images.py and gateway_image.py
build images offline. Used by the gateway worker and by the CLI (`faas up`, `faas compose`).
"""
