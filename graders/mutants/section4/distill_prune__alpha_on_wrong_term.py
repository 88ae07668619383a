"""Mutant: alpha weights the cross-entropy and 1 - alpha the soft term.

Misconception: alpha is "the weight of the loss". Codebases differ on which term it
scales; the exercise (after Hinton et al.) puts alpha on the distillation term.
"""


def distillation_loss(student_logits, teacher_logits, labels, T=2.0, alpha=0.5):
    vocab = student_logits.shape[-1]
    student = student_logits.reshape(-1, vocab)
    teacher = teacher_logits.detach().reshape(-1, vocab)
    log_p_student = F.log_softmax(student / T, dim=-1)
    log_p_teacher = F.log_softmax(teacher / T, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1).mean()
    ce = F.cross_entropy(student, labels.reshape(-1))
    return (1 - alpha) * T**2 * kl + alpha * ce
