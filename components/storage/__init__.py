"""Storage layer: the shared model store (FSx for Lustre, S3 or an existing RWX claim)."""
