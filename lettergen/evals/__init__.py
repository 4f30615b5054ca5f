"""The evaluations: clinical vignettes, the polish guard's mutation suite, and the edit check's lies and harmless
edits.
"""
