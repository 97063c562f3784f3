"""Tools around the output: Athena DDL, redrive, DynamoDB export reading, event generation."""
