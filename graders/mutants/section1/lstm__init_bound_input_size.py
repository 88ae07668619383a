"""Mutant: parameters drawn from U(-1/sqrt(input_size), 1/sqrt(input_size)).

Misconception: the fan-in rule of nn.Linear applies. torch's LSTM draws every
parameter from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).
"""

REFERENCE_PATCH = [
    ("        bound = 1.0 / math.sqrt(self.hidden_size)", "        bound = 1.0 / math.sqrt(self.input_size)"),
]
