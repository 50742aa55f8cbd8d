""".env: the document and its writer, its plan and repair, and where each value comes from
(flag, environment, .env, default) with its validation."""
