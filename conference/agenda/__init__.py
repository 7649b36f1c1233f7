"""The programme: rooms, tracks, sessions, timetable slots and published releases."""
