"""The development simulator: a WeChat follower and an SMS phone against this server, through the real protocols."""
