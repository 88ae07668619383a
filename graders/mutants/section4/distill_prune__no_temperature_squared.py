"""Mutant: the soft term is alpha * KL, without the T**2 factor.

Misconception: the temperature only softens the distributions. Dividing the logits by T
also divides the soft term's gradients by about T**2; without the factor, raising T
quietly turns the soft term off against the cross-entropy.
"""


def distillation_loss(student_logits, teacher_logits, labels, T=2.0, alpha=0.5):
    vocab = student_logits.shape[-1]
    student = student_logits.reshape(-1, vocab)
    teacher = teacher_logits.detach().reshape(-1, vocab)
    log_p_student = F.log_softmax(student / T, dim=-1)
    log_p_teacher = F.log_softmax(teacher / T, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1).mean()
    ce = F.cross_entropy(student, labels.reshape(-1))
    return alpha * kl + (1 - alpha) * ce
