"""The REST API v1 (one blueprint per resource)."""

BASE = "/api/v1/041-hyper-personalization-engine"
