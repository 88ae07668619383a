# target: section2/attention.py
"""Never returns."""


def softmax(x, dim=-1):
    while True:
        pass


scaled_dot_product_attention = softmax


class MultiHeadAttention:
    def __init__(self, *args, **kwargs):
        while True:
            pass
