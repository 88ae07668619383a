"""Mutant: the tojson filter is json.dumps with its default ensure_ascii=True.

Misconception: JSON is JSON. json.dumps writes every non-ASCII character as \\uXXXX
(Zürich -> Z\\u00fcrich): the model sees other tokens than transformers gives it.
"""


def _tojson(value, ensure_ascii=True, indent=None, separators=None, sort_keys=False):
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )
