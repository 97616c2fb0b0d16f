"""The coordinator: desired state in a store, pushed to nodes over gRPC."""
