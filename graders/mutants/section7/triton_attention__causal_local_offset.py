"""Mutant: the causal mask compares the key's index within its tile with the query's
global index.

Misconception: offs_n = tl.arange(0, BLOCK_N) is the key index; it is only the offset
inside the tile: the key's index is start_n + offs_n. Queries then see future keys on
every diagonal block but the first.
"""


@triton.jit
def _attention_inner(
    acc,
    l_i,
    m_i,
    q,
    k_ptrs,
    v_ptrs,
    offs_m,
    offs_n,
    start,
    stop,
    N,
    stride_kn,
    stride_vn,
    qk_scale,
    BLOCK_N: tl.constexpr,
    MASK_KEYS: tl.constexpr,
    CAUSAL_MASK: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
):
    """Fold key blocks start, start + BLOCK_N, ... (< stop) into (acc, l_i, m_i).

    MASK_KEYS: the range may end in a partial block (keys >= N are not loaded and
    score -inf). CAUSAL_MASK: the range crosses the diagonal (key j > query i scores
    -inf). Scores are in base 2 (qk_scale includes log2(e))."""
    for start_n in tl.range(start, stop, BLOCK_N):
        cols = start_n + offs_n
        if MASK_KEYS:
            k = tl.load(k_ptrs + start_n * stride_kn, mask=(cols < N)[:, None], other=0.0)
        else:
            k = tl.load(k_ptrs + start_n * stride_kn)
        s = tl.dot(q, tl.trans(k), input_precision=INPUT_PRECISION) * qk_scale
        if MASK_KEYS:
            s = tl.where(cols[None, :] < N, s, float("-inf"))
        if CAUSAL_MASK:
            s = tl.where(offs_n[None, :] <= offs_m[:, None], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.math.exp2(m_i - m_new)  # rescales what was summed under the old maximum
        p = tl.math.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        if MASK_KEYS:
            v = tl.load(v_ptrs + start_n * stride_vn, mask=(cols < N)[:, None], other=0.0)
        else:
            v = tl.load(v_ptrs + start_n * stride_vn)
        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=INPUT_PRECISION)
        m_i = m_new
    return acc, l_i, m_i
