"""The simulated serving node: servers, topology, tier hierarchy, compute model, cluster."""
