"""Attendance: who was present in which session for how long, the organisers' figures, certificates."""
