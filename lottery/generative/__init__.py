"""Learned starts: build a zoo of trained networks, fit a generator on it (``python -m lottery.generative``).

Decoding lives in ``lottery.init.learned``; this package only trains and writes generator files.
"""
