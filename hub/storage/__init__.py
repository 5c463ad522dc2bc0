"""All SQL lives here, one module per aggregate. Nothing here commits."""
