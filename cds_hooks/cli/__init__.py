"""The command line: serve (gunicorn), evaluate, screen, feedback report, demo, output formatting.
The top layer: may import anything in the package, including the application factory."""
