"""Mutant: only the image -> text cross-entropy (over the rows of the similarity matrix).

Misconception: one softmax is enough, "it is a classification of the texts". CLIP's
loss is symmetric: each text must also pick its image among the batch's images, the
cross-entropy over the columns, and the two are averaged.
"""


def clip_loss(image_features, text_features, logit_scale):
    img = F.normalize(image_features, dim=-1)
    txt = F.normalize(text_features, dim=-1)
    scale = torch.as_tensor(logit_scale, dtype=img.dtype).exp()
    logits = scale * img @ txt.T
    return F.cross_entropy(logits, torch.arange(logits.shape[0]))
