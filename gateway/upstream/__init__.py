"""Calling providers: transport, one attempt with its policies, provider state, selection."""
