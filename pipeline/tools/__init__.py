"""Tools around the output: Athena DDL, the current-state view, redrive, DynamoDB export reading, event generation."""
