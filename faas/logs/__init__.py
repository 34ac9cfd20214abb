"""Function logs: captured from each environment's FIFO (pump.py), framed as Lambda frames
them, kept per function on disk (store.py) and followed (follow.py). Gateway worker only.
"""
