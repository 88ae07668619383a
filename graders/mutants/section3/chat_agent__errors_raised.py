"""Mutant: the tool is called bare: an unknown name or a failing tool raises out of the loop.

Misconception: errors are for the caller. In an agent loop they are for the model: an
unknown tool or a tool's exception becomes the observation, and the model can recover
(fix the spelling, try another tool).
"""


def _call_tool(tools, action, action_input):
    return str(tools[action](action_input))
