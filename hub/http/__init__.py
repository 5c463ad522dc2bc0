"""HTTP layer: the app factory, webhooks, operations endpoints and the JSON API."""
