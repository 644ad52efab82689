"""The staff web: server-rendered pages that call the domain services."""
