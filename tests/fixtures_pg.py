"""PostgreSQL fixtures (a throwaway cluster per session)."""
