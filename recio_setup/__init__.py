"""recio-setup: the REC.IO environment bootstrapper, and the runtime library its services use."""

from __future__ import annotations

__version__ = "0.1.0"
