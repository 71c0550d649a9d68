"""Small pieces every domain package shares: the error base and the clock. No flask here."""
