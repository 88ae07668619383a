"""Mutant: max_chars is spent on the passages alone; the instructions, numbers and
question come on top.

Misconception: the budget is for "the context". The model's window (and the API's
limit) counts every character of the prompt, so the prompt overflows by the length of
its own frame.
"""


def build_rag_prompt(question, passages, max_chars):
    kept, used, spent = [], [], 0
    for i, passage in enumerate(passages):
        clean = " ".join(passage.split())
        if not clean or clean in kept:
            continue
        if spent + len(clean) > max_chars:
            break
        kept.append(clean)
        used.append(i)
        spent += len(clean)
    return format_rag_prompt(question, kept), used
