"""Socket.IO namespaces, one module each."""
