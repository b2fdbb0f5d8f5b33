"""The only place perago talks to the conductor-python SDK."""
