"""Payment events: the hub, delivery to the casino backend, the stream buffer."""
