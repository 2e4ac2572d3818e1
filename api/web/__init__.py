"""Server-rendered pages (Jinja2, no build step): bench, QA, clinic portal, auditor."""
