"""Payment flows: create, read back, payment ids, records, provider webhooks."""
