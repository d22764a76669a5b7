"""Security shared by every role: the hierarchy secret and signed calls between roles."""
