"""The knowledge base: citations (sources and findings), policies (criteria files and payer overlays), the store
and its integrity check.
"""
