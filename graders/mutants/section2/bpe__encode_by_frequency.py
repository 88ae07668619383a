"""Mutant: at encode time each step merges the most frequent adjacent pair of the
pre-token (ties by rank) instead of the pair with the lowest rank.

Misconception: encoding repeats training's rule. Training picks pairs by
frequency; encoding must replay the merges in the order they were learned.
"""


class Tokenizer(Tokenizer):
    def _bpe(self, pretoken):
        ids = self.cache.get(pretoken)
        if ids is not None:
            return ids
        parts = [self.byte_tokens[b] for b in pretoken.encode("utf-8")]
        while len(parts) > 1:
            counts = Counter(p for p in zip(parts, parts[1:]) if p in self.ranks)
            if not counts:
                break
            a, b = min(counts, key=lambda p: (-counts[p], self.ranks[p]))
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        ids = self.cache[pretoken] = [self.ids[p] for p in parts]
        return ids
