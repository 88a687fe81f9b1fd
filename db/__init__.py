"""Storage: SQLModel tables, the engine, repository functions and migrations."""
