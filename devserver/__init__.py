"""The local dev server: an embedded moto, the template's resources, and every route group behind an emulated
API Gateway on one port. Never deployed."""
