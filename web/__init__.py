"""The web door: one ASGI application over mra's services, with a JSON API and server-rendered pages."""
