"""The tianjin jurisdiction."""
