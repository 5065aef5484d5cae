"""The HTTP layer: routes (one module per resource), dependencies, middleware, problems."""
