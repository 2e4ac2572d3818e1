"""Sign-in for the API: tokens, long-lived clinic API keys, and request replay records."""
