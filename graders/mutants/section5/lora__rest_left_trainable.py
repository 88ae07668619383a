"""Mutant: apply_lora wraps the targets but does not freeze the rest of the model.

Misconception: LoRALinear freezes its own base, so the model is frozen. The
embeddings, norms, untargeted layers and the head stay trainable: that is
(nearly) full fine-tuning.
"""


def apply_lora(model, target_modules, r, alpha, dropout=0.0):
    targets = {target_modules} if isinstance(target_modules, str) else set(target_modules)
    linears = {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    matches = [name for name in linears if name.rsplit(".", 1)[-1] in targets]
    if not matches:
        raise ValueError(f"no nn.Linear layer matches {sorted(targets)}; the model has {sorted(linears)}")
    for name in matches:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, LoRALinear(linears[name], r, alpha, dropout))
    return model
