"""Where output goes: S3 or a folder, Firehose's prefixes and error format, delivery, streams to put back into."""
