"""Provenance: the ledger written beside each letter, and redaction of the identifiers it holds."""
