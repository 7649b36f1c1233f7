"""People: registration questions per event, the attendee list and its exports, the public participants list."""
