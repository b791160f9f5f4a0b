"""Load and fault scripts; never imported by the production settings or URLs."""
