"""The resident registry (一人一档): identity, profile and the provenance of every fact."""
