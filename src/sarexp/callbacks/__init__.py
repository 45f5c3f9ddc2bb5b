"""Lightning callbacks configured in conf/callbacks/."""
