"""tenancy: who owns what. Workspaces and API keys (``workspaces``), configurations
(``configs``) with their settings schema (``settings``) and merge patches
(``merge_patch``), and the activity log every stage writes to (``activities``).

May import: ``store``. Imported by every stage above it.
"""
