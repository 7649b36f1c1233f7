"""Speaker profiles and invitations."""
