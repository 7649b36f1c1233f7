"""The live layer: chat, Q&A, presence, moderation and announcements over Socket.IO."""
