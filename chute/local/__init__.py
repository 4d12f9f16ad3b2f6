"""The embedded local AWS (moto server, local Lambda workers and Batch jobs), the one place local
differs from cloud. May import tasks, chute and chute.ops; never chute.cli."""
