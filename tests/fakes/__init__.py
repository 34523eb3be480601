"""Local stand-ins for the services tollgate talks to (loopback only, never the internet)."""
