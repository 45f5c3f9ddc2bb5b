"""Logger variants configured in conf/logger/."""
