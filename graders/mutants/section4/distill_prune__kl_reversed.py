"""Mutant: the soft term is KL(p_student || p_teacher).

Misconception: KL is a distance, so the order does not matter. It is not symmetric:
the student's probabilities weight the log-ratio here, which punishes the student for
mass where the teacher has none instead of for missing the teacher's mass.
"""


def distillation_loss(student_logits, teacher_logits, labels, T=2.0, alpha=0.5):
    vocab = student_logits.shape[-1]
    student = student_logits.reshape(-1, vocab)
    teacher = teacher_logits.detach().reshape(-1, vocab)
    log_p_student = F.log_softmax(student / T, dim=-1)
    log_p_teacher = F.log_softmax(teacher / T, dim=-1)
    kl = (log_p_student.exp() * (log_p_student - log_p_teacher)).sum(dim=-1).mean()
    ce = F.cross_entropy(student, labels.reshape(-1))
    return alpha * T**2 * kl + (1 - alpha) * ce
