"""Mutant: the KL is averaged over all N * V entries instead of summed over V and averaged over N.

Misconception: "mean" is the natural reduction. F.kl_div(..., reduction="mean") (its
default) and a plain .mean() both divide by the vocabulary size too, so the soft term
shrinks by a factor V; "batchmean" is the KL of the formula.
"""


def distillation_loss(student_logits, teacher_logits, labels, T=2.0, alpha=0.5):
    vocab = student_logits.shape[-1]
    student = student_logits.reshape(-1, vocab)
    teacher = teacher_logits.detach().reshape(-1, vocab)
    log_p_student = F.log_softmax(student / T, dim=-1)
    log_p_teacher = F.log_softmax(teacher / T, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).mean()
    ce = F.cross_entropy(student, labels.reshape(-1))
    return alpha * T**2 * kl + (1 - alpha) * ce
