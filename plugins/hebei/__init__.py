"""The hebei jurisdiction."""
