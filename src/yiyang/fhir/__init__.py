"""FHIR R4 facade: mapping registry rows to FHIR resources and the /fhir REST routes."""
