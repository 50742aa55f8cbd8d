"""PostgreSQL: URL parsing (url.py imports nothing else of db), connecting within a deadline,
the probe behind `check`, and provisioning the role and database. psycopg is imported only
inside the functions that connect."""
