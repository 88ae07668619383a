"""Mutant: the KL is computed from softmax probabilities and their log().

Misconception: log(softmax(x)) is log_softmax(x). In exact arithmetic it is; in floating
point a confident teacher's small probabilities round to 0, log(0) = -inf, and
0 * -inf = NaN poisons the loss and every gradient.
"""


def distillation_loss(student_logits, teacher_logits, labels, T=2.0, alpha=0.5):
    vocab = student_logits.shape[-1]
    student = student_logits.reshape(-1, vocab)
    teacher = teacher_logits.detach().reshape(-1, vocab)
    p_student = torch.softmax(student / T, dim=-1)
    p_teacher = torch.softmax(teacher / T, dim=-1)
    kl = (p_teacher * (p_teacher.log() - p_student.log())).sum(dim=-1).mean()
    ce = F.cross_entropy(student, labels.reshape(-1))
    return alpha * T**2 * kl + (1 - alpha) * ce
