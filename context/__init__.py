"""Workspace indexing, retrieval of what the cursor needs, and packing into the prompt."""
