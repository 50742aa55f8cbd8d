"""The recio-setup command: argument parsing (app.py), output, the wizard, the listening probe,
and one module per subcommand in commands/. Nothing else of the package imports it."""
