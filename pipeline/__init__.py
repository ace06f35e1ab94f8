"""The pipeline definition and its configuration, shared by both runners."""
