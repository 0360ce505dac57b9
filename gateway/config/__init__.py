"""providers.yaml: the schema, loading and checks, the typed settings, diffs."""
