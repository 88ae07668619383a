"""Mutant: the similarities are raw dot products of the features, not cosines.

Misconception: the encoders' outputs can be compared as they are. CLIP normalises
each embedding to unit length first: the loss then depends on directions only, and
the scale is the learned temperature alone.
"""


def clip_loss(image_features, text_features, logit_scale):
    scale = torch.as_tensor(logit_scale, dtype=image_features.dtype).exp()
    logits = scale * image_features @ text_features.T
    targets = torch.arange(logits.shape[0])
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
