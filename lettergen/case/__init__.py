"""The case: its model (case file v1), YAML/JSON and FHIR input, codes (ICD-10-CM, CPT/HCPCS, NPI) and denial
codes.
"""
