"""Mutant: the teacher's logits are used without .detach().

Misconception: the teacher is frozen anyway. If its logits carry a graph (a teacher run
without torch.no_grad(), or trained jointly), backward() sends gradients into it: the
target moves toward the student, and the teacher's activations stay in memory.
"""


def distillation_loss(student_logits, teacher_logits, labels, T=2.0, alpha=0.5):
    vocab = student_logits.shape[-1]
    student = student_logits.reshape(-1, vocab)
    teacher = teacher_logits.reshape(-1, vocab)
    log_p_student = F.log_softmax(student / T, dim=-1)
    log_p_teacher = F.log_softmax(teacher / T, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1).mean()
    ce = F.cross_entropy(student, labels.reshape(-1))
    return alpha * T**2 * kl + (1 - alpha) * ce
