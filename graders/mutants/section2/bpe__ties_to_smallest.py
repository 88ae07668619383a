"""Mutant: ties between equally frequent pairs go to the lexicographically smallest pair.

Misconception: "any of the most frequent pairs will do", or max() over a
min-heap ordering. The rule (CS336's and the graders') is the greatest
(left, right) tuple of bytes; the wrong choice changes every later merge.
"""


class _Desc(_Desc):
    def __lt__(self, other):
        return self.key < other.key
