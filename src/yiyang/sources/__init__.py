"""Agency feeds (health, insurance, civil affairs), import runs and record linkage."""
