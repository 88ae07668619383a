"""Mutant: the output layer reads [context ; state] instead of [state ; context].

Misconception: concatenation order does not matter since the layer "learns anyway".
Trained from scratch it would; but the layout is part of the model's definition, and
with given weights (a checkpoint, or the tests') the features land on the wrong columns.
"""

REFERENCE_PATCH = [
    (
        "logits = self.out(torch.cat([state, context], dim=-1))",
        "logits = self.out(torch.cat([context, state], dim=-1))",
    )
]
