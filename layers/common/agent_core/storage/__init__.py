"""Adapters to AWS resources: the only modules that know DynamoDB keys and S3 object names."""
