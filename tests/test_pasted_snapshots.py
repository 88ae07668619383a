"""Values pasted into public tests are what the graders' oracle computes today.

Public tests that cannot ship an oracle (it would solve the exercise) compare with
values pasted from the hidden one. If a convention changes, this test says which
snapshot went stale; rerun the oracle on the fixed case and paste its output again.
"""

from __future__ import annotations

import torch

from llmkit.support import load_oracle, load_support

from .conftest import PROJECT_ROOT


def test_seq2seq_snapshots_come_from_the_oracle():
    support = load_support("0.3", PROJECT_ROOT)
    oracle = load_oracle("0.3", PROJECT_ROOT)
    fixed = (support.FIXED_SRC, support.FIXED_MASK)
    model = oracle.Oracle(support.fixed_state())
    with torch.no_grad():
        logits, weights = model.forward(*fixed, support.FIXED_TGT_IN)
    torch.testing.assert_close(logits, support.fixed_logits(), **support.FIXED_TOLERANCE)
    torch.testing.assert_close(weights, support.fixed_weights(), **support.FIXED_TOLERANCE)
    tokens = model.greedy(*fixed, support.FIXED_MAX_LEN, support.FIXED_BOS, support.FIXED_EOS)
    assert torch.equal(tokens, support.FIXED_TOKENS)
    mistaken = {
        "current_state_query": oracle.Wiring(query="current"),
        "concat_swapped": oracle.Wiring(concat="context_state"),
        "state_after_padding": oracle.Wiring(initial="after_padding"),
    }
    assert set(mistaken) == set(support._FIXED_MISTAKES)
    for slug, wiring in mistaken.items():
        with torch.no_grad():
            got, _ = oracle.Oracle(support.fixed_state(), wiring).forward(*fixed, support.FIXED_TGT_IN)
        pasted = support._pasted_logits(slug)()
        torch.testing.assert_close(got, pasted, **support.FIXED_TOLERANCE, msg=f"the pasted {slug} logits")
