"""Workspace files: the layout, scanning the root (stat only) and registering files in `files`."""
