"""Mutant: the two directions' cross-entropies added instead of averaged.

Misconception: "symmetric" means the sum. The loss is their mean, so that it stays on
the scale of one cross-entropy (log B at chance) and learning rates carry over.
"""


def clip_loss(image_features, text_features, logit_scale):
    img = F.normalize(image_features, dim=-1)
    txt = F.normalize(text_features, dim=-1)
    scale = torch.as_tensor(logit_scale, dtype=img.dtype).exp()
    logits = scale * img @ txt.T
    targets = torch.arange(logits.shape[0])
    return F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)
