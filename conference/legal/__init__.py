"""Legal pages (Impressum, privacy notice) and the versioned consent to the deployment's privacy notice."""
