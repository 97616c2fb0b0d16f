"""What the tests share: real brokers (brokers), real processes (cluster, processes),
the trust setup (trust). Test modules import from here, never from each other or conftest."""
