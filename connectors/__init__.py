"""Built-in channel connectors, each shaped exactly like a third-party plugin."""
