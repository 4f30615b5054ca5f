"""Outputs beyond text: the HTML document, PDF, DOCX and FHIR."""
