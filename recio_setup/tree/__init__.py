"""The project's files: safe operations through folder descriptors, the declarative data tree,
plan/apply, the archive and its undo, the run lock, and the generated config files."""
