"""Wire declarations shared by both sides: Foolscap remote interfaces (later HTTP schemas)."""
