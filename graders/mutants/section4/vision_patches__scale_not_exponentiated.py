"""Mutant: logit_scale multiplies the similarities as it is, without exp().

Misconception: "logit_scale" is the scale. CLIP learns its log (so that it stays
positive and moves multiplicatively); the parameter holds log(1/0.07) ~ 2.66 and the
similarities are multiplied by exp of it, ~14.3.
"""


def clip_loss(image_features, text_features, logit_scale):
    img = F.normalize(image_features, dim=-1)
    txt = F.normalize(text_features, dim=-1)
    logits = torch.as_tensor(logit_scale, dtype=img.dtype) * img @ txt.T
    targets = torch.arange(logits.shape[0])
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
