"""sarexp."""
