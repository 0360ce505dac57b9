"""Game flows: the merged catalog and launching."""
