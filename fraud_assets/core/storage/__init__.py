"""Where bytes live: local or S3 locations with atomic writes, and S3 bucket administration. Imports nothing else of the core."""
