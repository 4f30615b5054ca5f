"""The letter: the claims a letter may make, appeals, the sandboxed Jinja render and its layout and labels, the
staff note.
"""
