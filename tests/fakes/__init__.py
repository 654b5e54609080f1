"""Loopback fake exchange servers that speak the real wire formats."""
