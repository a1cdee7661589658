"""The etcd backend: client, watch, lease and the backend itself."""
