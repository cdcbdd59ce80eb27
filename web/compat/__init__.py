"""Other products' REST APIs served by HPE: Azure AI Personalizer under
``/compat/<config_id>/personalizer/`` (docs/personalizer.md).

Plain Flask blueprints, not flask-smorest: the routes, their JSON and their errors are
Personalizer's, not HPE's API (they are left out of HPE's OpenAPI document).
"""
