"""Independent oracles that public tests and hidden graders compare against.

Built on library implementations (torch), never on the reference solutions.
One module per exercise topic.
"""
