"""Data quality: trading calendars, quality flags, gap and coverage reports."""
