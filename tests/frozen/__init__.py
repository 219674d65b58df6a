"""The alert evaluation as it was at 15acef1 (`monitoring/alerts.py`, `monitoring/outcomes.py`),
kept unchanged so that tests/test_evaluation_matches_before.py can show that the faster
evaluation gives exactly the same rows. Not used by the application."""
