"""The running gateway: the immutable Runtime, what outlives it, reload, background loops."""
