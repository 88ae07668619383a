"""Mutant: the scale exponentiated twice: exp(exp(logit_scale)).

Misconception: the model's forward already returns logit_scale.exp() (open_clip's does)
and the loss exponentiates what it receives once more. Only one of the two may: here
the loss gets the raw log-scale and exponentiates it once.
"""


def clip_loss(image_features, text_features, logit_scale):
    img = F.normalize(image_features, dim=-1)
    txt = F.normalize(text_features, dim=-1)
    scale = torch.as_tensor(logit_scale, dtype=img.dtype).exp().exp()
    logits = scale * img @ txt.T
    targets = torch.arange(logits.shape[0])
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
