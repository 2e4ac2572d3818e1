"""What each role's home counts and lists (reads only)."""
