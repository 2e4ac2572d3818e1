"""An HL7 FHIR facade over the lims domain: lims records as FHIR resources, FHIR search
parameters as lims queries, a FHIR ServiceRequest as a dose order. No web framework here:
api/fhir serves it under /fhir.

Resources are validated with ``fhir.resources.R4B`` (FHIR 4.3.0): fhir.resources 8 models
R5 by default, and R4B is the R4-compatible release for every resource served here.
"""
