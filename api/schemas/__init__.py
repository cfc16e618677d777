"""Request and response bodies, one module per resource, named by role (…Create, …Public, …sPublic)."""
