"""Nothing lost under load, restarts and scale-out: the real service processes and real databases."""
