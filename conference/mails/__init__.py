"""Mails attendees get: registration confirmation, session reminders, slides notices, organisers' announcements."""
