"""Small helpers shared across fpspot."""
