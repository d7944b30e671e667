"""SSH fixtures (a real sshd on loopback per session)."""
