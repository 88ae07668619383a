# target: section2/attention.py
"""Sleeps (no CPU used) far past any time limit, and ignores SIGTERM and SIGINT."""

import signal
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)


def softmax(x, dim=-1):
    time.sleep(10**6)


scaled_dot_product_attention = softmax
MultiHeadAttention = softmax
