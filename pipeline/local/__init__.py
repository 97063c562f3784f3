"""A local Firehose: sources, the runner, the verdict on each response, and the sandbox on a moto server."""
