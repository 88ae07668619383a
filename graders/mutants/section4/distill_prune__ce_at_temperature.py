"""Mutant: the hard-label cross-entropy uses the softened logits student / T.

Misconception: once the student's logits are divided by T, everything uses them. Only
the soft term is computed at temperature T; the labels are matched at T = 1, as the
student will be used.
"""


def distillation_loss(student_logits, teacher_logits, labels, T=2.0, alpha=0.5):
    vocab = student_logits.shape[-1]
    student = student_logits.reshape(-1, vocab) / T
    teacher = teacher_logits.detach().reshape(-1, vocab) / T
    log_p_student = F.log_softmax(student, dim=-1)
    log_p_teacher = F.log_softmax(teacher, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1).mean()
    ce = F.cross_entropy(student, labels.reshape(-1))
    return alpha * T**2 * kl + (1 - alpha) * ce
