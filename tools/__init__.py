"""Tools for working on the project as a team; not pipeline stages."""
