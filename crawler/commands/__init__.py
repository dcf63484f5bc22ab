"""Project Scrapy commands (``COMMANDS_MODULE`` in settings.py)."""
