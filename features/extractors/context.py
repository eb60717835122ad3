"""Feature kinds: placeholder, filled by its owner."""
