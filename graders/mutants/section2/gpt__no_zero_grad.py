"""Mutant: train() never clears the gradients, so each step's gradient piles onto the last.

Misconception: backward() "computes the gradient". It adds into .grad; without
optimizer.zero_grad() every step follows the sum of all gradients so far.
"""


def train(
    model, batches, steps, *, max_lr=3e-3, warmup_steps=20, min_lr=3e-4, weight_decay=0.1, betas=(0.9, 0.95)
):
    optimizer = AdamW(model.parameters(), lr=max_lr, betas=betas, weight_decay=weight_decay)
    model.train()
    losses = []
    batches = iter(batches)
    for step in range(steps):
        inputs, targets = next(batches)
        for group in optimizer.param_groups:
            group["lr"] = lr_schedule(step, steps, max_lr, warmup_steps, min_lr)
        loss = cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
