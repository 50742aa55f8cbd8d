"""What REC.IO's services import: ports, paths, host, the manifest and its cache.

Standard library and python-dotenv only, and nothing else of recio_setup but errors and
result: a service that looks up its port pays for none of the CLI (docs/architecture.md).
The public names are re-exported, lazily, by recio_setup/__init__.py; api.py holds them.
"""
