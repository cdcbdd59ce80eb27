"""The plugin manager and HPE's built-in non-channel plugins."""
